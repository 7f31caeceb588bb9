"""Rural / urban NDCG@10 of the pipeline and of the oracle, per product-generator world and pooled over several.

Usage: python experiments/benchmarks/rural_urban_pooled.py --as-of 2025-03-01 W1:P1.pkl W2:P2.pkl ...

Each argument is a `trajectory synth` output (aif/ and truth/) and a paired_reranker.py run on it (its saved
per-participant NDCG@10; `--max-participants 100000` scores everyone with a next step). One world of 100,000
participants holds under 2,000 rural ones with a next step, so its ratio's 95% interval is about +-0.04 wide;
pooling the participants of several seeds narrows it. Prints JSON: per world and pooled, the participants, NDCG@10
of the pipeline and the oracle, and each one's rural / urban ratio with its bootstrap interval
(`recommender.metrics.ratio_of_means`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from recommender.metrics import ratio_of_means
from training.evaluation import region_types

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interest_diagnostics import oracle_ndcg
from paired_reranker import split_with_truth


def world_frame(world: Path, pipeline_file: Path, as_of: str) -> pd.DataFrame:
    """Per participant of the paired run: the pipeline's and the oracle's NDCG@10 and the region type."""
    split = split_with_truth(world / "aif", world / "truth", as_of, 90, False)
    pipeline = pd.read_pickle(pipeline_file)
    people = pd.Series(pipeline.index.astype(str))
    kinds = region_types(split.train).reindex(people.to_numpy())
    return pd.DataFrame({"pipeline": pipeline.to_numpy(), "oracle": oracle_ndcg(world / "truth", split, people),
                         "kind": kinds.to_numpy()})


def summary(frame: pd.DataFrame) -> dict[str, object]:
    rural, urban = frame[frame["kind"] == "rural"], frame[frame["kind"] == "urban"]
    out: dict[str, object] = {"participants": len(frame), "rural": len(rural), "urban": len(urban)}
    for model in ("pipeline", "oracle"):
        ratio, low, high = ratio_of_means(rural[model].to_numpy(), urban[model].to_numpy())
        out[model] = {"ndcg@10": round(float(frame[model].mean()), 4), "rural_vs_urban": round(ratio, 3),
                      "rural_vs_urban_95": [round(low, 3), round(high, 3)]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="WORLD_DIR:PAIRED_RUN.pkl")
    parser.add_argument("--as-of", required=True)
    args = parser.parse_args()
    frames = {}
    for run in args.runs:
        world, _, pipeline_file = run.rpartition(":")
        if not world:
            parser.error(f"{run!r}: expected WORLD_DIR:PAIRED_RUN.pkl")
        frames[world] = world_frame(Path(world), Path(pipeline_file), args.as_of)
    report = {world: summary(frame) for world, frame in frames.items()}
    report["pooled"] = summary(pd.concat(frames.values(), ignore_index=True))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
