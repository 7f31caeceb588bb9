"""Tune the teammate ranking's weights (`training.teams.TeammateConfig`) on a world apart from the benchmark's.

    nice -n 10 .venv/bin/python experiments/benchmarks/tune_teammates.py --world /tmp/w40_s8 --seed 8

A grid over the weights of TEAMMATE_SIGNALS, scored by NDCG@10 of the teammates actually joined after
the cut date (the queries of `bench_mentors_teams.py`). Prints the current weights' NDCG, the best
weights and the runners-up as JSON. The benchmark world (seed 7) is never read here.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from bench_mentors_teams import _cut_date, teammate_queries

from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training.teams import TEAMMATE_SIGNALS, TeammateConfig, TeammateContext, participant_skills, teammate_signals

GRID = {
    "complement": (0.0, 0.5, 1.0, 2.0),
    "same_school": (0.5, 1.5, 3.0, 5.0),
    "former_teammates": (0.0, 0.5, 1.0, 2.0),
    "reach": (0.0, 0.3, 1.0, 2.0),
    "attendance": (0.0, 0.2, 0.5),
    "level_gap": (0.0, 0.2, 0.5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--world", type=Path, default=Path("data/worlds/tune_teammates"))
    parser.add_argument("--participants", type=int, default=40000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--cut-share", type=float, default=0.6)
    args = parser.parse_args()
    if not (args.world / "aif").is_dir():
        generate_world(SynthConfig(participants=args.participants, seed=args.seed), args.world)
    graph = AchievementsGraph.from_aif(args.world / "aif")
    as_of = _cut_date(graph, args.cut_share)
    past = graph.as_of(as_of)
    skills = participant_skills(past)
    context = TeammateContext.from_graph(past)
    queries = teammate_queries(graph, as_of, args.queries, args.seed)
    signals = [teammate_signals(p, e, cand, skills, context) for p, e, cand, _ in queries]
    grid = np.array(list(itertools.product(*(GRID[name] for name in TEAMMATE_SIGNALS))), dtype=np.float64)
    discount = 1.0 / np.log2(np.arange(10) + 2)
    total = np.zeros(len(grid))
    for (_, _, cand, mates), x in zip(queries, signals, strict=True):
        relevant = np.isin(cand, list(mates)).astype(np.float64)
        score = x @ grid.T  # [candidates, weightings]
        # Stable order, as the ranking: ties keep the (shuffled) candidate order.
        top = np.argsort(-score, axis=0, kind="stable")[:10]
        gained = (relevant[top] * discount[: len(top), None]).sum(axis=0)
        total += gained / discount[: min(len(mates), 10)].sum()
    ndcg = total / len(queries)
    current = np.array([getattr(TeammateConfig(), name) for name in TEAMMATE_SIGNALS])
    at_current = int(np.flatnonzero((grid == current).all(axis=1))[0]) if (grid == current).all(axis=1).any() else None
    order = np.argsort(-ndcg, kind="stable")
    print(json.dumps({
        "world_seed": args.seed, "queries": len(queries), "weightings": len(grid),
        "current": {"weights": dict(zip(TEAMMATE_SIGNALS, current.tolist(), strict=True)),
                    "ndcg@10": None if at_current is None else round(float(ndcg[at_current]), 4)},
        "best": [{"weights": dict(zip(TEAMMATE_SIGNALS, grid[i].tolist(), strict=True)),
                  "ndcg@10": round(float(ndcg[i]), 4)} for i in order[:5]],
    }, indent=2))


if __name__ == "__main__":
    main()
