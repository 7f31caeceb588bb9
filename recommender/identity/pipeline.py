"""Resolve the participants of several AIF datasets into one dataset, with merge audit, review queue and undo.

`resolve_datasets(inputs, out_dir)` reads the adapters' AIF datasets, resolves their participant
records into persons and writes `out_dir/aif` (one participant per person; achievements re-pointed,
duplicates merged) plus the audit files:

- `record_map.csv`: every input participant record -> its participant and the confidence;
- `merges.csv`: every merge (pair of records) with score, confidence, evidence and who decided;
- `review_queue.csv`: uncertain pairs for a person to accept or reject;
- `decisions.jsonl`: reviewer decisions and undos (append-only), replayed by every run;
- `audit.jsonl`: append-only log of runs and decisions (ids and counts only, no personal data);
- `resolution.json`: inputs, config and the accounting of every row.

Evidence files hold record ids and similarities, never names, birth dates or e-mails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender.aif.reader import read_dataset
from recommender.aif.writer import write_dataset
from recommender.columns import IDENTITY_FIELDS, RESULT_RANK
from recommender.identity.resolve import (
    BIRTH_DAY,
    EMAIL,
    MIDDLE,
    NAME_A,
    NAME_B,
    RECORD_ID,
    REGION,
    SCHOOL,
    SOURCE,
    Decision,
    Resolution,
    ResolutionConfig,
    resolve,
)

DECISIONS = "decisions.jsonl"
AUDIT = "audit.jsonl"
RESOLUTION = "resolution.json"
_MERGED_FIELDS = (*IDENTITY_FIELDS, "region_code", "organization_id", "gender", "settlement_type", "grade",
                  "consent_research", "consent_admissions", "interests")


def records_from_participants(participants: pd.DataFrame, source: str) -> pd.DataFrame:
    """The record frame of entity resolution from an AIF participants table."""
    birth = participants.get("birth_date", pd.Series(pd.NaT, index=participants.index))
    days = pd.to_datetime(birth).to_numpy().astype("datetime64[D]")
    day = np.where(np.isnat(days), -1, days.astype(np.int64))

    def column(name: str) -> pd.Series:
        return participants[name] if name in participants.columns else pd.Series(pd.NA, index=participants.index)

    return pd.DataFrame({
        RECORD_ID: participants["participant_id"].astype(str).to_numpy(dtype=object),
        SOURCE: source,
        NAME_A: column("last_name").to_numpy(dtype=object),
        NAME_B: column("first_name").to_numpy(dtype=object),
        MIDDLE: column("middle_name").to_numpy(dtype=object),
        BIRTH_DAY: day,
        REGION: column("region_code").to_numpy(dtype=object),
        SCHOOL: column("organization_id").to_numpy(dtype=object),
        EMAIL: column("email").to_numpy(dtype=object),
    })


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV through Arrow: millions of merge rows in seconds."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _append(path: Path, entry: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def load_decisions(out_dir: Path) -> list[Decision]:
    path = Path(out_dir) / DECISIONS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(Decision(d["action"], d["left"], d["right"]))
    return out


def _most_common(frame: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Per `key`, the most frequent known value of `column` (ties: the earliest record)."""
    sub = frame[[key, column]].dropna()
    if sub.empty:
        return pd.Series(dtype=frame[column].dtype)
    sub = sub.assign(_order=np.arange(len(sub)))
    counts = sub.groupby([key, column], sort=False, observed=True).agg(n=("_order", "size"), first=("_order", "min"))
    counts = counts.reset_index().sort_values([key, "n", "first"], ascending=[True, False, True])
    best = counts.drop_duplicates(key)
    return pd.Series(best[column].to_numpy(), index=best[key].to_numpy()).astype(frame[column].dtype)


def merge_tables(
    datasets: Sequence[Any], resolution: Resolution, anchored: set[str] | frozenset[str] = frozenset()
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """One AIF dataset of the inputs with participants replaced by the resolved persons.

    `anchored` are stored participant ids: records resolved to them count as merged, not loaded.
    """
    mapping = pd.Series(resolution.participant_ids, index=resolution.record_ids)
    tables: dict[str, pd.DataFrame] = {}
    counts: dict[str, dict[str, int]] = {}
    names = ["competences", "organizations", "resource_centers", "events", "mentors", "teams", "programs"]
    for name in names:
        frames = [d.tables[name] for d in datasets if name in d.tables and len(d.tables[name])]
        if not frames:
            continue
        frame = pd.concat(frames, ignore_index=True)
        key = frame.columns[0]
        unique = frame.drop_duplicates(key).reset_index(drop=True)
        tables[name] = unique.drop(columns=["extra"], errors="ignore")
        counts[name] = {"read": len(frame), "loaded": len(unique), "merged": len(frame) - len(unique)}

    people = pd.concat([d.tables["participants"] for d in datasets if "participants" in d.tables], ignore_index=True)
    people = people.drop(columns=["extra"], errors="ignore")
    canonical = mapping.reindex(people["participant_id"].astype(str)).to_numpy()
    people["participant_id"] = pd.array(canonical, dtype="string")
    ids = pd.Index(sorted(pd.unique(people["participant_id"].astype(str))))
    merged = pd.DataFrame({"participant_id": pd.array(ids.to_numpy(dtype=object), dtype="string")})
    for column in _MERGED_FIELDS:
        if column in people.columns:
            merged[column] = _most_common(people, "participant_id", column).reindex(ids).to_numpy()
            merged[column] = merged[column].astype(people[column].dtype)
    tables["participants"] = merged
    new = int((~merged["participant_id"].astype(str).isin(anchored)).sum())
    counts["participants"] = {"read": len(people), "loaded": new, "merged": len(people) - new,
                              "matched_stored_participants": len(merged) - new}

    ach = pd.concat([d.tables["achievements"] for d in datasets if "achievements" in d.tables], ignore_index=True)
    ach = ach.drop(columns=["extra"], errors="ignore")
    ach["participant_id"] = pd.array(mapping.reindex(ach["participant_id"].astype(str)).to_numpy(), dtype="string")
    # The same achievement reported twice (a duplicated row, two records of one child): keep the best result.
    ach["_rank"] = ach["result"].map(RESULT_RANK).fillna(-1).astype(int)
    ach = ach.sort_values(["participant_id", "event_id", "role", "_rank"], ascending=[True, True, True, False],
                          kind="stable")
    unique = ach.drop_duplicates(["participant_id", "event_id", "role"]).drop(columns=["_rank"])
    if "achievement_id" in unique.columns:
        unique = unique.drop_duplicates("achievement_id") if unique["achievement_id"].notna().all() else unique
    tables["achievements"] = unique.reset_index(drop=True)
    counts["achievements"] = {"read": len(ach), "loaded": len(unique), "merged": len(ach) - len(unique)}
    return tables, counts


def resolve_datasets(
    inputs: Sequence[Path],
    out_dir: Path,
    cfg: ResolutionConfig | None = None,
    *,
    store: str | None = None,
    use_store: bool = False,
    actor: str = "resolve",
) -> dict[str, Any]:
    """Resolve the AIF datasets `inputs` into `out_dir` (see the module docstring); returns the report.

    With `use_store`, the participants already in the store at `store` (None: the default store)
    take part as anchors: a person found there keeps the stored participant id, so ingesting the
    result merges the new achievements into that participant instead of creating another one.
    """
    cfg = cfg or ResolutionConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    datasets = [read_dataset(Path(p)) for p in inputs]
    parts = [
        records_from_participants(d.tables["participants"], d.source) for d in datasets if "participants" in d.tables
    ]
    if use_store:
        from recommender.identity.stored import stored_records

        parts.insert(0, stored_records(store))
    records = pd.concat(parts, ignore_index=True)
    anchors = (records[SOURCE] == "store").to_numpy() if use_store else None
    decisions = load_decisions(out_dir)
    resolution = resolve(records, cfg, decisions, anchors)
    stored_ids = set(records.loc[anchors, RECORD_ID]) if anchors is not None else set()
    tables, counts = merge_tables(datasets, resolution, anchored=stored_ids)
    exported = max((str(d.manifest.get("exported_at", "")) for d in datasets), default="") or None
    write_dataset(out_dir / "aif", tables, {"source": "resolved", "exported_at": exported}, fmt="csv")

    record_map = resolution.record_map()
    record_map.insert(1, SOURCE, records[SOURCE].to_numpy())
    _write_csv(record_map, out_dir / "record_map.csv")
    _write_csv(resolution.merges, out_dir / "merges.csv")
    _write_csv(resolution.review_queue, out_dir / "review_queue.csv")
    input_quarantine = {
        d.source: int(d.quarantine["line"].nunique()) if len(d.quarantine) else 0 for d in datasets
    }
    report: dict[str, Any] = {
        "inputs": [str(Path(p).resolve()) for p in inputs],
        "use_store": use_store,
        "stored_records": int(anchors.sum()) if anchors is not None else 0,
        "config": cfg.model_dump(),
        "records": len(records),
        "participants": int(pd.Series(resolution.participant_ids).nunique()),
        "candidate_pairs": resolution.candidate_pairs,
        "merges": len(resolution.merges),
        "review_queue": len(resolution.review_queue),
        "decisions_applied": len(decisions),
        "tables": counts,
        "input_rows_quarantined": input_quarantine,
        "low_confidence_records": int((resolution.confidence < 0.99).sum()),
    }
    (out_dir / RESOLUTION).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _append(out_dir / AUDIT, {
        "at": _now(), "action": "resolve", "by": actor, "records": report["records"],
        "participants": report["participants"], "merges": report["merges"], "review_queue": report["review_queue"],
        "decisions_applied": len(decisions),
    })
    return report


def _find_pair(out_dir: Path, merge_id: str) -> tuple[str, str, str]:
    for name, kind in (("merges.csv", "merge"), ("review_queue.csv", "review")):
        path = out_dir / name
        if not path.is_file():
            continue
        frame = pd.read_csv(path, dtype=str, usecols=["merge_id", "left", "right"])
        hit = frame[frame["merge_id"] == merge_id]
        if len(hit):
            return str(hit["left"].iloc[0]), str(hit["right"].iloc[0]), kind
    raise KeyError(f"no merge or review pair {merge_id} in {out_dir}")


def decide(
    out_dir: Path, merge_id: str, action: str, *, actor: str, reason: str = "", store: str | None = None
) -> dict[str, Any]:
    """Record a decision on a merge or review pair (`accept`, `reject`, `undo`) and re-run the resolution.

    `undo` takes back an automatic merge: the two records are never merged again unless accepted
    later. The decision and its outcome go to the audit trail; the run is replayed from the inputs
    (and, when the run used the store, from the store at `store`; its URL is never written down).
    """
    out_dir = Path(out_dir)
    if action not in ("accept", "reject", "undo"):
        raise ValueError(f"unknown decision {action!r} (accept, reject or undo)")
    left, right, kind = _find_pair(out_dir, merge_id)
    if action == "undo" and kind != "merge":
        raise ValueError(f"{merge_id} is not a merge; reject a review pair instead")
    before = pd.read_csv(out_dir / "record_map.csv", dtype=str).set_index(RECORD_ID)["participant_id"]
    _append(out_dir / DECISIONS, {"at": _now(), "action": action, "merge_id": merge_id, "left": left, "right": right,
                                  "by": actor, "reason": reason})
    state = json.loads((out_dir / RESOLUTION).read_text(encoding="utf-8"))
    report = resolve_datasets([Path(p) for p in state["inputs"]], out_dir, ResolutionConfig(**state["config"]),
                              store=store, use_store=bool(state.get("use_store")), actor=actor)
    after = pd.read_csv(out_dir / "record_map.csv", dtype=str).set_index(RECORD_ID)["participant_id"]
    together = bool(after.get(left) == after.get(right))
    outcome = {
        "merge_id": merge_id, "action": action, "records_together_before": bool(before.get(left) == before.get(right)),
        "records_together_after": together, "participants": report["participants"],
    }
    _append(out_dir / AUDIT, {"at": _now(), "by": actor, "reason": reason, **outcome})
    return outcome
