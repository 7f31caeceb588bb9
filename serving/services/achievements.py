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
from serving.schemas_writes import AchievementsWriteOut, RejectedItemOut
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

    rows: pd.DataFrame  # valid, minus repeats of an earlier item of the batch
    positions: np.ndarray  # the posted index of each valid row
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)  # index -> (field, reason)
    repeated: int = 0  # repeats of an earlier item of the same batch (duplicates)
    # The write round of each row: the n-th distinct item of a natural key is written in round n, after
    # the earlier ones (a registration and its result in one batch: the result updates the registration).
    rounds: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def check_achievements(items: Sequence[Mapping[str, Any]], today: pd.Timestamp) -> CheckedItems:
    """The AIF rules of the reader, applied to posted items: types and enumerations, required fields,
    no date after `today`. Within the batch, an item equal to an earlier one, or naming the achievement_id
    of an earlier item under another natural key, is a duplicate; another item of a natural key is written
    after the earlier ones (`rounds`), so a batch acts as its items posted one after the other."""
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
    keys = list(zip(*(frame[name].tolist() for name in NATURAL_KEY), strict=True))
    ids = frame[Columns.Achievement].tolist()
    # Unknown as None: pd.NA compares to nothing, so tuples holding it could not be compared safely.
    values = list(zip(*([None if pd.isna(v) else v for v in frame[name].tolist()] for name in frame.columns),
                      strict=True))
    items_of_key: dict[tuple[Any, ...], set[tuple[Any, ...]]] = {}
    key_of_id: dict[Any, tuple[Any, ...]] = {}
    keep, rounds, repeated = [], [], 0
    for row in np.flatnonzero(~failed).tolist():
        key, same_key = keys[row], items_of_key.setdefault(keys[row], set())
        named = None if ids[row] is pd.NA else key_of_id.setdefault(ids[row], key)
        if values[row] in same_key or named not in (None, key):
            repeated += 1
            continue
        rounds.append(len(same_key))
        same_key.add(values[row])
        keep.append(row)
    positions = np.asarray(keep, dtype=np.int64)
    return CheckedItems(frame.take(positions).reset_index(drop=True), positions, rejected, repeated,
                        np.asarray(rounds, dtype=np.int64))


def _extra(item: Mapping[str, Any]) -> str | None:
    """Unknown fields as the AIF `extra` JSON object; personal data (names, birth dates, e-mails) is dropped."""
    unknown = {k: v for k, v in item.items() if k not in NOT_EXTRA and v not in (None, "")}
    return json.dumps(unknown, ensure_ascii=False, default=str) if unknown else None


def post_achievements(
    state: ServingState, sync: GraphSync, key_id: str, items: Sequence[Mapping[str, Any]]
) -> AchievementsWriteOut:
    """Validate, store exactly once (or update the stored row of the key), quarantine the rejected, then fold
    the stored rows into the graph."""
    store = _store(state)
    checked = check_achievements(items, state.today())
    written = online.WriteResult()
    rejected = dict(checked.rejected)
    for round_ in range(int(checked.rounds.max()) + 1 if len(checked.rounds) else 0):
        mine = np.flatnonzero(checked.rounds == round_)
        part = online.write_achievements(store.engine, checked.rows.take(mine), f"{online.API_SOURCE_PREFIX}{key_id}")
        written.inserted += part.inserted
        written.updated += part.updated
        written.duplicates += part.duplicates
        for r in part.rejected:
            rejected[int(checked.positions[mine[r.position]])] = (r.field, r.reason)
    if rejected:
        quarantine(store, items, rejected)
    if written.inserted or written.updated:
        # Every worker of the service (this one too) folds the rows in before its next answer that reads the
        # graph: many posts between two reads cost one fold-in, not one each (a fold-in at 1,000,000
        # participants allocates a new graph; 32 clients posting at once made hundreds of them).
        sync.stored()
    log.info("achievements posted: %d stored, %d updated, %d duplicates, %d rejected", written.inserted,
             written.updated, written.duplicates + checked.repeated, len(rejected))
    return AchievementsWriteOut(
        accepted=written.inserted + written.updated,
        stored=written.inserted,
        updated=written.updated,
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
