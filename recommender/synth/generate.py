"""Generate a world and write it: DIR/aif (AIF v1, what models see) and DIR/truth (what they must not)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from recommender.aif.writer import write_dataset
from recommender.synth.config import SynthConfig
from recommender.synth.export import aif_tables, manifest
from recommender.synth.simulate import simulate
from recommender.synth.truth import save_truth


def generate_world(cfg: SynthConfig, out_dir: Path) -> dict[str, Any]:
    """Simulate and write the world; returns a summary (counts per table, seconds) free of personal data."""
    t0 = time.perf_counter()
    world = simulate(cfg)
    t1 = time.perf_counter()
    out_dir = Path(out_dir)
    tables = aif_tables(world)
    write_dataset(out_dir / "aif", tables, manifest(world), fmt="csv")
    t2 = time.perf_counter()
    truth_counts = save_truth(world, out_dir / "truth")
    t3 = time.perf_counter()
    return {
        "out": str(out_dir),
        "seed": cfg.seed,
        "participants": cfg.participants,
        "start_date": cfg.start_date.isoformat(),
        "end_date": cfg.end_date.isoformat(),
        "aif": {name: len(frame) for name, frame in tables.items()},
        "truth": truth_counts,
        "seconds": {
            "simulate": round(t1 - t0, 2), "write_aif": round(t2 - t1, 2), "write_truth": round(t3 - t2, 2),
            "total": round(t3 - t0, 2),
        },
    }
