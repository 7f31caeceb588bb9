"""The dataset manifest and the error for a dataset that cannot be read at all."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from recommender.schema import AIF_FORMAT

_SUPPORTED_VERSION = re.compile(r"1(\.\d+)*")


class AifError(Exception):
    """The dataset as a whole is unreadable (no or bad manifest, ambiguous files); rows are never the cause."""


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    """The manifest of an AIF v1.x dataset directory; raises AifError naming the file otherwise."""
    path = Path(dataset_dir) / "manifest.json"
    if not Path(dataset_dir).is_dir():
        raise AifError(f"{dataset_dir}: not a directory (an AIF dataset is a directory with manifest.json)")
    if not path.is_file():
        raise AifError(f"{path}: missing (an AIF dataset needs manifest.json)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AifError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise AifError(f"{path}: must hold a JSON object")
    if manifest.get("format") != AIF_FORMAT:
        raise AifError(f"{path}: format is {manifest.get('format')!r}, expected {AIF_FORMAT!r}")
    version = manifest.get("version")
    if not isinstance(version, str) or not _SUPPORTED_VERSION.fullmatch(version.strip()):
        raise AifError(f"{path}: version {version!r} is not supported (expected 1.x)")
    return manifest
