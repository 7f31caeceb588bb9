"""Posted achievements: AIF validation item by item, exactly-once storage, quarantine, and fold-in at once."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from recommender.aif.dataset import QUARANTINE_COLUMNS
from recommender.aif.parsing import ParseContext, blank, parse_field
from recommender.aif.sources import _json_text as aif_text
from recommender.columns import IDENTITY_FIELDS, Columns
from recommender.reference import competence_ids, region_codes
from recommender.schema import ACHIEVEMENTS
from recommender.store import online
from recommender.store.quarantine import write_quarantine
from recommender.store.store import Store
from serving.errors import ApiError
from serving.schemas_writes import RejectedItemOut, WriteOut
from serving.services.fold_in import GraphSync
from serving.state import ServingState

log = logging.getLogger("trajectory.serving")

QUARANTINE_FILE: Final = "POST /v1/achievements"
NATURAL_KEY: Final = (Columns.Participant, Columns.Event, Columns.Role)
# Not kept in `extra`: the AIF fields themselves and personal data (names, birth dates, e-mails).
NOT_EXTRA: Final = frozenset(ACHIEVEMENTS.names) | frozenset(IDENTITY_FIELDS)


@dataclass
class CheckedItems:
    """Posted items after the AIF checks: valid rows (canonical dtypes) and what became of the others."""

    rows: pd.DataFrame  # valid, first of their key within the batch
    positions: np.ndarray  # the posted index of each valid row
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)  # index -> (field, reason)
    repeated: int = 0  # repeats of an earlier item of the same batch (duplicates)


def check_achievements(items: Sequence[Mapping[str, Any]], today: pd.Timestamp) -> CheckedItems:
    """The AIF rules of the reader, applied to posted items: types and enumerations, required fields,
    no date after `today`; repeats of an item's id or natural key within the batch count as duplicates."""
    n = len(items)
    context = ParseContext(competence_ids(), region_codes())
    failed = np.zeros(n, dtype=bool)
    rejected: dict[int, tuple[str, str]] = {}
    columns: dict[str, pa.Array] = {}
    for spec in ACHIEVEMENTS.fields:
        text = pa.array([aif_text(item.get(spec.name)) for item in items], type=pa.string())
        parsed = parse_field(spec, text, context)
        columns[spec.name] = parsed.values
        if spec.required:
            missing = blank(text) & ~parsed.bad & ~failed
            for i in np.flatnonzero(missing):
                rejected[int(i)] = (spec.name, f"missing required field '{spec.name}'")
            failed |= missing
        for i in np.flatnonzero(parsed.bad & ~failed):
            rejected[int(i)] = (spec.name, parsed.reason(str(text[int(i)].as_py())))
            failed[i] = True
    frame = pa.table(columns).to_pandas(types_mapper=online.PANDAS_TYPES.get)
    frame[Columns.Extra] = pd.array([_extra(item) for item in items], dtype="string")
    with np.errstate(invalid="ignore"):
        late = ~failed & (frame[Columns.Date].to_numpy() > today.to_datetime64())
    for i in np.flatnonzero(late):
        day = frame[Columns.Date].iloc[i].strftime("%Y-%m-%d")
        rejected[int(i)] = (Columns.Date, f"date {day} is after today ({today.strftime('%Y-%m-%d')})")
    failed |= late
    # The first item of each id and natural key is kept; later ones in the batch are duplicates.
    keys = list(zip(*(frame[name].tolist() for name in NATURAL_KEY), strict=True))
    ids = frame[Columns.Achievement].tolist()
    seen_keys: set[tuple[Any, ...]] = set()
    seen_ids: set[Any] = set()
    keep, repeated = [], 0
    for row in np.flatnonzero(~failed).tolist():
        known_id = ids[row] is not pd.NA and ids[row] in seen_ids
        if keys[row] in seen_keys or known_id:
            repeated += 1
            continue
        seen_keys.add(keys[row])
        if ids[row] is not pd.NA:
            seen_ids.add(ids[row])
        keep.append(row)
    positions = np.asarray(keep, dtype=np.int64)
    return CheckedItems(frame.take(positions).reset_index(drop=True), positions, rejected, repeated)


def _extra(item: Mapping[str, Any]) -> str | None:
    """Unknown fields as the AIF `extra` JSON object; personal data (names, birth dates, e-mails) is dropped."""
    unknown = {k: v for k, v in item.items() if k not in NOT_EXTRA and v not in (None, "")}
    return json.dumps(unknown, ensure_ascii=False, default=str) if unknown else None


def post_achievements(
    state: ServingState, sync: GraphSync, key_id: str, items: Sequence[Mapping[str, Any]]
) -> WriteOut:
    """Validate, store exactly once, quarantine the rejected, then fold the stored rows into the graph."""
    store = _store(state)
    checked = check_achievements(items, state.today())
    written = online.insert_achievements(store.engine, checked.rows, f"{online.API_SOURCE_PREFIX}{key_id}")
    rejected = dict(checked.rejected)
    for r in written.rejected:
        rejected[int(checked.positions[r.position])] = (r.field, r.reason)
    if rejected:
        quarantine(store, items, rejected)
    if written.inserted:
        sync.sync(now=True)
    log.info("achievements posted: %d accepted, %d duplicates, %d rejected", written.inserted,
             written.duplicates + checked.repeated, len(rejected))
    return WriteOut(
        accepted=written.inserted,
        duplicates=written.duplicates + checked.repeated,
        rejected=len(rejected),
        rejected_items=[RejectedItemOut(index=i, field=f, reason=r) for i, (f, r) in sorted(rejected.items())],
    )


def quarantine(store: Store, items: Sequence[Mapping[str, Any]], rejected: Mapping[int, tuple[str, str]]) -> None:
    """Rejected items to the store's quarantine directory (the ingest's CSV; personal data masked)."""
    indexes = sorted(rejected)
    frame = pd.DataFrame({
        "file": QUARANTINE_FILE,
        "line": indexes,
        "table": ACHIEVEMENTS.name,
        "field": [rejected[i][0] for i in indexes],
        "reason": [rejected[i][1] for i in indexes],
        "raw": [json.dumps(dict(items[i]), ensure_ascii=False, default=str) for i in indexes],
    }, columns=list(QUARANTINE_COLUMNS))
    # A random suffix: workers writing in the same second never pick the same file.
    write_quarantine(frame, store.quarantine_dir, f"api-achievements-{uuid.uuid4().hex[:8]}", datetime.now(UTC))


def _store(state: ServingState) -> Store:
    if state.store is None:
        raise ApiError(503, "store_unavailable", "no store is configured")
    return state.store
