"""Benchmark: scoring every participant of a world against each of a few admissions programs (time per program).

    .venv/bin/python experiments/benchmarks/bench_admissions.py WORLD_DIR/aif --programs 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from features.competence.estimator import CompetenceRatings
from recommender.graph import AchievementsGraph
from training.admissions import SCORED, Program, score_program


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("aif_dir", type=Path)
    parser.add_argument("--programs", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    graph = AchievementsGraph.from_aif(args.aif_dir)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = CompetenceRatings().fit(graph)
    fit_s = time.perf_counter() - t0
    ids = graph.participant_index.tolist()
    report: dict[str, object] = {
        "participants": len(ids), "achievements": len(graph.achievements), "read_seconds": round(read_s, 2),
        "fit_seconds": round(fit_s, 2), "programs": [],
    }
    for program_id in graph.programs["program_id"].astype(str).head(args.programs):
        t0 = time.perf_counter()
        frame = score_program(model, graph, Program.from_graph(graph, program_id), ids)
        report["programs"].append({  # type: ignore[attr-defined]
            "program_id": program_id, "seconds": round(time.perf_counter() - t0, 2),
            "scored": int((frame["status"] == SCORED).sum()), "listed": len(frame),
        })
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
