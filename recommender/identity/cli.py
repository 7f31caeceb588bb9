"""`trajectory identity`: resolve people across sources, review uncertain pairs, undo merges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from recommender.cli import emit_json, fail

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Resolve the same person across sources.")


@app.command()
def resolve(
    inputs: Annotated[list[Path], typer.Argument(help="AIF datasets (e.g. from `trajectory adapt convert`).")],
    out: Annotated[Path, typer.Option(help="Output directory: aif/, record_map.csv, merges.csv, review_queue.csv.")],
    window: Annotated[int, typer.Option(help="Neighbours compared per sorted block.")] = 8,
    merge_threshold: Annotated[float, typer.Option(help="Score from which pairs merge.")] = 8.0,
    review_threshold: Annotated[float, typer.Option(help="Score from which unmerged pairs go to review.")] = 5.5,
    with_store: Annotated[bool, typer.Option(help="Match against the participants already in the store.")] = False,
    store: Annotated[str | None, typer.Option(help="Store URL for --with-store (default: the embedded store).")] = None,
) -> None:
    """Merge the participant records of the datasets into persons (decisions in OUT are replayed)."""
    from recommender.aif.manifest import AifError
    from recommender.identity.pipeline import resolve_datasets
    from recommender.identity.resolve import ResolutionConfig

    missing = [str(p) for p in inputs if not p.is_dir()]
    if missing:
        fail(f"not a directory: {missing[0]}")
    try:
        cfg = ResolutionConfig(window=window, merge_threshold=merge_threshold, review_threshold=review_threshold)
        emit_json(resolve_datasets(inputs, out, cfg, store=store, use_store=with_store))
    except (AifError, ValueError) as exc:
        fail(f"cannot resolve: {exc}")


@app.command()
def review(
    directory: Annotated[Path, typer.Argument(help="A resolution output directory.")],
    limit: Annotated[int, typer.Option(help="Pairs to show, most uncertain first.")] = 20,
) -> None:
    """Show the review queue: pairs neither merged nor ruled out (record ids and evidence only)."""
    import pandas as pd

    path = directory / "review_queue.csv"
    if not path.is_file():
        fail(f"{directory}: no review queue (run `trajectory identity resolve` first)")
    queue = pd.read_csv(path, dtype={"left": str, "right": str})
    queue = queue.assign(_d=(queue["confidence"] - 0.5).abs()).sort_values(["_d", "merge_id"]).drop(columns="_d")
    emit_json({"pairs": len(queue), "shown": json.loads(queue.head(limit).to_json(orient="records"))})


StoreOption = Annotated[str | None, typer.Option(help="Store URL when the run used --with-store.")]


def _decide(directory: Path, merge_id: str, action: str, by: str, reason: str, store: str | None) -> None:
    from recommender.identity.pipeline import decide

    try:
        emit_json(decide(directory, merge_id, action, actor=by, reason=reason, store=store))
    except (KeyError, ValueError, FileNotFoundError) as exc:
        fail(str(exc).strip("'\""))


@app.command()
def accept(
    directory: Annotated[Path, typer.Argument(help="A resolution output directory.")],
    merge_id: Annotated[str, typer.Argument(help="The pair's merge_id from review_queue.csv.")],
    by: Annotated[str, typer.Option(help="Who decided (goes to the audit trail).")] = "reviewer",
    reason: Annotated[str, typer.Option(help="Why (no personal data).")] = "",
    store: StoreOption = None,
) -> None:
    """Merge a review pair and re-run the resolution."""
    _decide(directory, merge_id, "accept", by, reason, store)


@app.command()
def reject(
    directory: Annotated[Path, typer.Argument(help="A resolution output directory.")],
    merge_id: Annotated[str, typer.Argument(help="The pair's merge_id from review_queue.csv.")],
    by: Annotated[str, typer.Option(help="Who decided (goes to the audit trail).")] = "reviewer",
    reason: Annotated[str, typer.Option(help="Why (no personal data).")] = "",
    store: StoreOption = None,
) -> None:
    """Rule a review pair out (never merged) and re-run the resolution."""
    _decide(directory, merge_id, "reject", by, reason, store)


@app.command()
def undo(
    directory: Annotated[Path, typer.Argument(help="A resolution output directory.")],
    merge_id: Annotated[str, typer.Argument(help="The merge_id from merges.csv.")],
    by: Annotated[str, typer.Option(help="Who decided (goes to the audit trail).")] = "reviewer",
    reason: Annotated[str, typer.Option(help="Why (no personal data).")] = "",
    store: StoreOption = None,
) -> None:
    """Take back an automatic merge and re-run the resolution; the audit trail keeps both."""
    _decide(directory, merge_id, "undo", by, reason, store)
