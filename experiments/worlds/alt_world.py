"""An alternative synthetic world, made independently of recommender/synth, to judge the product on data it did
not generate itself: writes DIR/aif (AIF v1) and DIR/truth (the world's own truth format with its oracle).

    .venv/bin/python experiments/worlds/alt_world.py --participants 100000 --seed 5 --out /tmp/alt100k
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alt_catalog import make_catalog
from alt_choice import Chooser, TasteCoefficients
from alt_files import write_aif, write_truth
from alt_population import make_population
from alt_simulate import simulate


def generate(participants: int, seed: int, out: Path) -> dict:
    """Same seed, same world. Returns counts and seconds per phase."""
    started = time.perf_counter()
    streams = np.random.SeedSequence(seed).spawn(5)
    cat = make_catalog(np.random.default_rng(streams[0]))
    pop = make_population(np.random.default_rng(streams[1]), participants)
    coef = TasteCoefficients()
    chooser = Chooser(region=pop.region, settlement=pop.settlement, birth_year=pop.birth_year, taste=pop.taste,
                      interest=pop.interest, catalog=cat, coef=coef)
    built = time.perf_counter()
    hist = simulate(np.random.default_rng(streams[2]), pop, cat, chooser)
    simulated = time.perf_counter()
    report = {"seed": seed, **write_aif(out / "aif", seed, pop, cat, hist, np.random.default_rng(streams[3]))}
    report |= write_truth(out / "truth", seed, participants, pop, cat, hist, coef)
    report["seconds"] = {"setup": round(built - started, 1), "simulate": round(simulated - built, 1),
                         "write": round(time.perf_counter() - simulated, 1)}
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(generate(args.participants, args.seed, args.out), indent=2))


if __name__ == "__main__":
    main()
