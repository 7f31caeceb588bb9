"""Source adapters: each organizer's export format converted to AIF (see README.md to add one)."""

from __future__ import annotations

from pathlib import Path

from recommender.adapters.base import Conversion, SourceAdapter
from recommender.adapters.courses import CourseCompletions
from recommender.adapters.hackathon import HackathonExport
from recommender.adapters.olympiad import OlympiadSheet

# The registry: format name -> adapter. Adding a format is one module and one line here.
ADAPTERS: dict[str, SourceAdapter] = {
    adapter.name: adapter for adapter in (OlympiadSheet(), HackathonExport(), CourseCompletions())
}

__all__ = ["ADAPTERS", "Conversion", "SourceAdapter", "adapter_for", "convert"]


def adapter_for(path: Path, fmt: str | None = None) -> SourceAdapter:
    """The adapter named `fmt`, or the first whose `sniff` recognizes the file."""
    if fmt is not None:
        if fmt not in ADAPTERS:
            raise ValueError(f"unknown source format {fmt!r} (known: {', '.join(sorted(ADAPTERS))})")
        return ADAPTERS[fmt]
    for adapter in ADAPTERS.values():
        if adapter.sniff(Path(path)):
            return adapter
    raise ValueError(f"{Path(path).name}: no adapter recognizes this file; give the format")


def convert(path: Path, fmt: str | None = None, *, source: str | None = None) -> Conversion:
    """Convert one source file to AIF tables plus its quarantine."""
    return adapter_for(Path(path), fmt).convert(Path(path), source=source)
