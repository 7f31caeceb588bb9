"""Benchmark: skill recovery on synthetic worlds (Spearman vs true skill, vs total points, 90% coverage).

Generates worlds with `trajectory synth` (or reuses --world directories), fits the competence rating on
each world's AIF, and compares the skills on the export date with the ground truth, per world and
against the product's targets (Spearman >= 0.85 and >= 0.15 above total points, coverage 85-95%).

    .venv/bin/python experiments/benchmarks/bench_profiles_synth.py --participants 20000,100000 --seeds 11,12
    .venv/bin/python experiments/benchmarks/bench_profiles_synth.py --world data/worlds/w100k
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

TARGET_SPEARMAN = 0.85
TARGET_GAIN = 0.15
TARGET_COVERAGE = (0.85, 0.95)


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
    result["spearman_gain_over_points"] = result["spearman"] - result["spearman_points"]
    return {**result, "achievements": float(len(graph.achievements)), "fit_seconds": round(fit_s, 2),
            **{f"growth.{fmt}": float(g) for fmt, g in model.growth_.items()}}


def meets_targets(result: dict[str, float]) -> bool:
    lo, hi = TARGET_COVERAGE
    return bool(result["spearman"] >= TARGET_SPEARMAN and result["spearman_gain_over_points"] >= TARGET_GAIN
                and lo <= result["coverage"] <= hi)


def synth(participants: int, seed: int, out: Path) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "trajectory"), "synth", "--participants", str(participants),
         "--seed", str(seed), "--out", str(out)],
        check=True, stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", default="100000", help="world sizes, comma-separated")
    parser.add_argument("--seeds", default="7", help="world seeds, comma-separated")
    parser.add_argument("--world", type=Path, action="append", default=[],
                        help="an existing world directory (repeatable; skips synth)")
    parser.add_argument("--config", default="{}", help="RatingConfig overrides as JSON")
    args = parser.parse_args()
    config = RatingConfig(**json.loads(args.config))
    report: dict[str, dict[str, float | bool]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        worlds = {str(w): w for w in args.world}
        if not worlds:
            for n in (int(v) for v in args.participants.split(",")):
                for seed in (int(v) for v in args.seeds.split(",")):
                    out = Path(tmp) / f"w{n}_s{seed}"
                    synth(n, seed, out)
                    worlds[f"{n} participants, seed {seed}"] = out
        for name, world in worlds.items():
            result = evaluate_world(world, config)
            report[name] = {**{k: round(v, 4) for k, v in result.items()}, "meets_targets": meets_targets(result)}
            print(json.dumps({name: report[name]}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
