"""Weighted lists (`id:weight;id:weight`), the AIF encoding of competence weights and requirements."""

from __future__ import annotations


def parse_weighted(text: str | None) -> list[tuple[str, float]]:
    """Parse normalized weighted-list text; a bare id weighs 1. Validation happens in the AIF reader."""
    if not text:
        return []
    items: list[tuple[str, float]] = []
    for part in str(text).split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, weight = part.partition(":")
        items.append((name.strip(), float(weight) if sep else 1.0))
    return items


def format_weighted(items: list[tuple[str, float]]) -> str:
    return ";".join(f"{name}:{weight:g}" for name, weight in items)


def main_item(text: str | None) -> str | None:
    """The id with the highest weight (the first one on ties)."""
    items = parse_weighted(text)
    if not items:
        return None
    return max(items, key=lambda item: item[1])[0]
