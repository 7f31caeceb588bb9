"""Benchmark: latency of POST /v1/programs/{id}/scores in process (TestClient, real SQLite audit) by request size.

    nice -n 10 .venv/bin/python experiments/benchmarks/bench_program_scores.py WORLD_DIR/aif --programs 3 --repeats 9

For each program the first request (which may build per-program caches) is reported apart from the
median of the following ones; each request asks for N distinct participants drawn with a fixed seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from features.competence.estimator import CompetenceRatings
from recommender.graph import AchievementsGraph
from recommender.store.api_keys import create_key
from recommender.store.store import Store
from serving.app import create_app
from serving.loaded_model import LoadedModel
from serving.settings import Settings
from serving.side_models import COMPETENCE_MODEL, build_side_models
from serving.state import ServingState
from training.popularity import PopularityRecommender

SIZES = (1, 200, 1000)


def _export_date(aif_dir: Path) -> pd.Timestamp:
    manifest = json.loads((aif_dir / "manifest.json").read_text(encoding="utf-8"))
    return pd.Timestamp(str(manifest["exported_at"])[:10])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("aif_dir", type=Path)
    parser.add_argument("--programs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=9, help="Timed requests per program and size after the first.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report: dict[str, object] = {}
    t0 = time.perf_counter()
    graph = AchievementsGraph.from_aif(args.aif_dir)
    as_of = _export_date(args.aif_dir)
    report |= {"participants": graph.n_participants, "achievements": len(graph.achievements),
               "read_seconds": round(time.perf_counter() - t0, 2)}
    t0 = time.perf_counter()
    ratings = CompetenceRatings().fit(graph)
    report["fit_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    competence = LoadedModel(COMPETENCE_MODEL, "competence_ratings", f"{COMPETENCE_MODEL}:competence_ratings", ratings,
                             "bench")
    side = build_side_models(graph, as_of, competence, None, None)
    report["side_models_seconds"] = round(time.perf_counter() - t0, 2)
    rng = np.random.default_rng(args.seed)
    ids = graph.participant_index.to_numpy().astype(str)
    programs = graph.programs["program_id"].astype(str).head(args.programs).tolist()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'service.db'}", snapshot_dir=Path(tmp) / "snapshot",
                      quarantine_dir=Path(tmp) / "quarantine")
        store.migrate()
        _, secret = create_key(store.engine, "bench-partner", ["partner"], rate_per_minute=10_000_000)
        headers = {"Authorization": f"Bearer {secret}"}
        state = ServingState(graph, PopularityRecommender().fit(graph), "next-steps:popularity", None, [],
                             as_of.date(), store=store)
        state.side = side
        with TestClient(create_app(Settings(), state=state)) as client:
            for size in SIZES:
                for program in programs:
                    timings = []
                    for _ in range(args.repeats + 1):
                        body = {"participant_ids": rng.choice(ids, size=size, replace=False).tolist()}
                        t0 = time.perf_counter()
                        r = client.post(f"/v1/programs/{program}/scores", json=body, headers=headers)
                        timings.append(1000.0 * (time.perf_counter() - t0))
                        if r.status_code != 200:
                            raise SystemExit(f"{program}: HTTP {r.status_code} {r.text[:200]}")
                    rows.append({"ids": size, "program_id": program, "first_ms": round(timings[0], 1),
                                 "median_ms": round(statistics.median(timings[1:]), 1),
                                 "min_ms": round(min(timings[1:]), 1)})
        store.close()
    report["requests"] = rows
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
