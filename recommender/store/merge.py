"""Merge planning in pandas: which dataset rows are new, which merge into stored rows, which are rejected.

Merge rule (one rule for every table and field): a known value in the new dataset replaces the stored
value, an unknown one keeps it. So a later dataset fills fields the store did not know and corrects
the ones it knew differently, and loading the same dataset again changes nothing. Keys never change,
and `source` stays the source that first brought the row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.aif.dataset import QUARANTINE_COLUMNS
from recommender.columns import IDENTITY_FIELDS
from recommender.schema import ACHIEVEMENTS, PARTICIPANTS, TableSpec
from recommender.store.tables import ACHIEVEMENT_REFS, BIRTH_YEAR, EXTRA, GRADE_DATE, PK, SOURCE, stored_fields

ROLE: Final = "role"
ACHIEVEMENT_ID: Final = "achievement_id"
PARTICIPANT_PK: Final = "participant_pk"
EVENT_PK: Final = "event_pk"
# The natural key of a stored achievement.
ACHIEVEMENT_KEY: Final = (PARTICIPANT_PK, EVENT_PK, ROLE)


def _string_array(values: pd.Series) -> pa.Array:
    array = pa.array(values.astype("string"), type=pa.string(), from_pandas=True)
    # Arrow-backed pandas strings convert to a chunked array when they hold several chunks.
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


@dataclass
class KeyIndex:
    """External id -> internal pk of one stored table, and the next free pk.

    Arrow hash lookups: mapping 15 million achievement references against a million ids takes
    seconds, where a pandas string index takes tens of seconds.
    """

    keys: pa.Array = field(default_factory=lambda: pa.array([], type=pa.string()))
    pks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))
    next_pk: int = 1

    @classmethod
    def from_rows(cls, rows: list[tuple[int, str]]) -> KeyIndex:
        if not rows:
            return cls()
        pks, ids = zip(*rows, strict=True)
        values = np.asarray(pks, dtype="int64")
        return cls(pa.array(ids, type=pa.string()), values, int(values.max()) + 1)

    def lookup(self, ids: pd.Series) -> pd.Series:
        """The pk of each id (NA where the id is not stored)."""
        if len(self.pks) == 0:
            return pd.Series(index=ids.index, dtype="Int64")
        positions = pc.index_in(_string_array(ids), value_set=self.keys)
        missing = positions.is_null().to_numpy(zero_copy_only=False)
        values = self.pks[positions.fill_null(0).to_numpy(zero_copy_only=False)]
        return pd.Series(pd.arrays.IntegerArray(values, missing), index=ids.index)

    def allocate(self, ids: pd.Series) -> np.ndarray:
        """Give the (new, distinct) ids the next free pks and remember them."""
        pks = np.arange(self.next_pk, self.next_pk + len(ids), dtype="int64")
        self.next_pk += len(ids)
        self.keys = pa.concat_arrays([self.keys, _string_array(ids)])
        self.pks = np.concatenate([self.pks, pks])
        return pks

    def ids(self) -> set[str]:
        return set(self.keys.to_pylist())


@dataclass
class TablePlan:
    """What one table's rows do: inserts (with their new pks), updates (by pk) and rejects."""

    name: str
    inserts: pd.DataFrame
    updates: pd.DataFrame
    rejected: pd.DataFrame
    # Participants only: the identity values of every row, split into inserts and merges by the store.
    identities: pd.DataFrame | None = None

    @property
    def loaded(self) -> int:
        return len(self.inserts)

    @property
    def merged(self) -> int:
        return len(self.updates)


def rejected_rows(table: str, frame: pd.DataFrame, reason: str, field_name: str | None) -> pd.DataFrame:
    """Quarantine rows for rows the store itself cannot take; identity values never copied."""
    hidden = [c for c in frame.columns if c in IDENTITY_FIELDS or (c == EXTRA and table == PARTICIPANTS.name)]
    visible = frame.drop(columns=hidden)
    raw = [
        json.dumps({k: v for k, v in row.items() if not pd.isna(v)}, default=str, ensure_ascii=False)
        for row in visible.astype(object).to_dict("records")
    ]
    return pd.DataFrame(
        {
            "file": table,
            "line": pd.array([pd.NA] * len(frame), dtype="Int64"),
            "table": table,
            "field": field_name,
            "reason": reason,
            "raw": raw,
        },
        columns=list(QUARANTINE_COLUMNS),
    )


def no_rejects() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in QUARANTINE_COLUMNS})


def _updatable(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame.loc[:, [PK, *columns]]


def plan_entities(
    spec: TableSpec, frame: pd.DataFrame, index: KeyIndex, *, source: str, grade_date: pd.Timestamp | None
) -> TablePlan:
    """Plan a table keyed by one external id (everything but achievements)."""
    key = spec.key[0]
    duplicated = frame[key].duplicated(keep="first")
    rejected = rejected_rows(spec.name, frame[duplicated], f"duplicate {key} in this dataset", key)
    frame = frame[~duplicated].reset_index(drop=True)

    columns = [f.name for f in stored_fields(spec)]
    rows = frame.loc[:, columns].copy()
    if spec.name == PARTICIPANTS.name:
        rows[BIRTH_YEAR] = frame["birth_date"].dt.year.astype("Int64")
        # The grade holds on the export date; where no grade is given, no date is either.
        known_date = pd.Timestamp(grade_date) if grade_date is not None else pd.NaT
        rows[GRADE_DATE] = pd.Series(known_date, index=rows.index, dtype="datetime64[s]").where(frame["grade"].notna())
    else:
        rows[EXTRA] = frame[EXTRA]
    pks = index.lookup(frame[key])
    is_new = pks.isna().to_numpy()
    rows.insert(0, PK, pks)
    rows.loc[is_new, PK] = index.allocate(frame.loc[is_new, key])
    rows[PK] = rows[PK].astype("int64")

    inserts = rows[is_new].assign(**{SOURCE: source})
    updatable = [c for c in rows.columns if c not in (PK, key)]
    plan = TablePlan(spec.name, inserts.reset_index(drop=True), _updatable(rows[~is_new], updatable), rejected)
    if spec.name == PARTICIPANTS.name:
        identity = frame.loc[:, list(IDENTITY_FIELDS)].copy()
        identity[EXTRA] = frame[EXTRA]
        identity.insert(0, PARTICIPANT_PK, rows[PK].to_numpy())
        plan.identities = identity
    return plan


def plan_identities(identity: pd.DataFrame, stored: pd.Index, index: KeyIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Identity rows to insert (for participants with none stored yet) and to merge (by participant_pk)."""
    known = identity.drop(columns=[PARTICIPANT_PK]).notna().any(axis=1)
    identity = identity[known]
    exists = identity[PARTICIPANT_PK].isin(stored).to_numpy()
    inserts = identity[~exists].copy()
    inserts.insert(0, PK, np.arange(index.next_pk, index.next_pk + len(inserts), dtype="int64"))
    index.next_pk += len(inserts)
    return inserts.reset_index(drop=True), identity[exists].reset_index(drop=True)


def plan_achievements(
    frame: pd.DataFrame,
    refs: dict[str, KeyIndex],
    stored: pd.DataFrame,
    index: KeyIndex,
    *,
    source: str,
) -> TablePlan:
    """Plan achievements: resolve references to pks, match stored rows by achievement_id, else by key.

    `stored` holds (pk, participant_pk, event_pk, role, achievement_id) of the stored achievements
    that could match (those of the dataset's participants or achievement ids).
    """
    name = ACHIEVEMENTS.name
    rows = frame.copy()
    rejects = [no_rejects()]
    for ref, table in ACHIEVEMENT_REFS.items():
        pk_column = ref.removesuffix("_id") + "_pk"
        rows[pk_column] = refs[table].lookup(rows[ref])
        # The reader checks references; this guards the store's foreign keys all the same.
        dangling = rows[ref].notna() & rows[pk_column].isna()
        if dangling.any():
            rejects.append(rejected_rows(name, frame[dangling], f"{ref} refers to no known {table[:-1]}", ref))
            rows = rows[~dangling]

    duplicated = rows.duplicated(list(ACHIEVEMENT_KEY)) | (
        rows[ACHIEVEMENT_ID].notna() & rows.duplicated([ACHIEVEMENT_ID])
    )
    if duplicated.any():
        rejects.append(
            rejected_rows(name, frame.loc[rows.index[duplicated]], "duplicate achievement in this dataset", None)
        )
        rows = rows[~duplicated]
    rows = rows.reset_index(drop=True)

    by_key = rows.loc[:, list(ACHIEVEMENT_KEY)].merge(
        stored.loc[:, [PK, *ACHIEVEMENT_KEY]].astype({PK: "Int64"}), how="left", on=list(ACHIEVEMENT_KEY)
    )[PK]
    with_id = stored[stored[ACHIEVEMENT_ID].notna()]
    by_id = rows[ACHIEVEMENT_ID].map(pd.Series(with_id[PK].to_numpy(), index=with_id[ACHIEVEMENT_ID].to_numpy()))
    by_id = by_id.astype("Int64")
    # An id naming one stored achievement while the key names another would merge two achievements.
    clash = (by_id.notna() & by_key.notna() & (by_id != by_key)).fillna(False).to_numpy(dtype=bool)
    if clash.any():
        rejects.append(
            rejected_rows(
                name, rows[clash], "achievement_id names another stored achievement than this key", ACHIEVEMENT_ID
            )
        )
    pks = by_id.fillna(by_key)
    twice = (pks.notna() & pks.duplicated(keep="first")).to_numpy(dtype=bool)
    if twice.any():
        rejects.append(rejected_rows(name, rows[twice], "two rows of this dataset match one stored achievement", None))
    keep = ~(clash | twice)
    rows, pks = rows[keep], pks[keep]

    names = [f.name for f in stored_fields(ACHIEVEMENTS)]
    columns = [n.removesuffix("_id") + "_pk" if n in ACHIEVEMENT_REFS else n for n in names]
    out = rows.loc[:, columns].copy()
    out[EXTRA] = rows[EXTRA]
    is_new = pks.isna().to_numpy()
    # New rows in participant order keep one participant's history together on disk and make
    # the index inserts sequential.
    inserts = out[is_new].sort_values([PARTICIPANT_PK, "date", EVENT_PK], kind="stable")
    inserts.insert(0, PK, np.arange(index.next_pk, index.next_pk + len(inserts), dtype="int64"))
    index.next_pk += len(inserts)
    inserts[SOURCE] = source
    updates = out[~is_new].copy()
    updates.insert(0, PK, pks[~is_new].astype("int64").to_numpy())
    updatable = [c for c in updates.columns if c not in (PK, *ACHIEVEMENT_KEY)]
    return TablePlan(
        name,
        inserts.reset_index(drop=True),
        _updatable(updates, updatable).reset_index(drop=True),
        pd.concat(rejects, ignore_index=True),
    )
