"""Benchmark: skill recovery on a synthetic world (Spearman vs true skill, vs total points, 90% coverage).

Generates a world with `trajectory synth` (or reuses --world), fits the competence rating on its
AIF, and compares the skills on the export date with the ground truth.

    .venv/bin/python experiments/benchmarks/bench_profiles_synth.py --participants 100000 --seed 7
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from features.competence.estimator import CompetenceRatings, RatingConfig
from features.competence.evaluation import points_sum, results_per_competence, skill_recovery
from recommender.graph import AchievementsGraph
from recommender.synth.truth import load_truth


def evaluate_world(world: Path, config: RatingConfig | None = None) -> dict[str, float]:
    """Fit on the world's AIF and measure recovery of the true skills on its export date."""
    graph = AchievementsGraph.from_aif(world / "aif")
    t0 = time.perf_counter()
    model = CompetenceRatings(config or RatingConfig()).fit(graph, record_history=False)
    fit_s = time.perf_counter() - t0
    truth = load_truth(world)
    end = truth.config.end_date
    true = truth.skills_at(end)
    order = graph.competence_index.get_indexer(truth.competences)
    rows = graph.participant_index.get_indexer(truth.participant_ids.astype(str))
    mu, sd = model.skill(np.arange(graph.n_participants), on_day=int(np.datetime64(end, "D").astype(np.int64)))
    result = skill_recovery(
        mu[rows][:, order], sd[rows][:, order], true,
        results_per_competence(graph)[rows][:, order], points_sum(graph)[rows][:, order],
    )
    return {**result, "achievements": float(len(graph.achievements)), "fit_seconds": round(fit_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--world", type=Path, default=None, help="an existing world directory (skips synth)")
    parser.add_argument("--config", default="{}", help="RatingConfig overrides as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world = args.world or Path(tmp) / "world"
        if args.world is None:
            subprocess.run(
                [str(Path(sys.executable).parent / "trajectory"), "synth", "--participants", str(args.participants),
                 "--seed", str(args.seed), "--out", str(world)],
                check=True, stdout=subprocess.DEVNULL,
            )
        out = evaluate_world(world, RatingConfig(**json.loads(args.config)))
    out["spearman_gain_over_points"] = out["spearman"] - out["spearman_points"]
    print(json.dumps({k: round(v, 4) for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
