"""Research export: an AIF data set of consenting participants with keyed pseudonyms and k-anonymity.

Participants who did not consent to research are left out with all their achievements. Every
participant id becomes an HMAC-SHA256 pseudonym under a secret key that is never written anywhere;
names, e-mails, birth dates, achievement ids and other direct identifiers are dropped. The
quasi-identifiers (birth year, region, settlement type, organization, grade) are generalized
step by step (Datafly: the attribute with the most distinct values first) until the participants
left in classes smaller than k fit the suppression budget; those are then suppressed (left out).
A report says what was generalized and suppressed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender.aif.writer import write_dataset
from recommender.columns import IDENTITY_FIELDS

KEY_ENV = "TRAJECTORY_EXPORT_KEY"
MIN_KEY_BYTES = 16
SUPPRESSED = "*"
# Released quasi-identifier columns (generalized text) -> the source column they come from.
QUASI_IDENTIFIERS = {
    "birth_year": "birth_year",
    "region_group": "region_code",
    "settlement_group": "settlement_type",
    "organization_group": "organization_id",
    "grade_group": "grade",
}
REPORT_FILE = "research_report.json"


def pseudonym(key: bytes, value: str, prefix: str = "R") -> str:
    """Keyed pseudonym: the same id and key always give the same pseudonym; without the key, no way back."""
    return prefix + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def _pseudonyms(key: bytes, values: pd.Series, prefix: str = "R") -> pd.Series:
    codes, uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
    mapped = np.array([pseudonym(key, str(u), prefix) for u in uniques] + [None], dtype=object)
    return pd.Series(pd.array(mapped[codes], dtype="string"), index=values.index)


# --- generalization hierarchies: level 0 is the exact value, the last level suppresses it --------


def _year_band(width: int) -> Callable[[pd.Series], pd.Series]:
    def band(years: pd.Series) -> pd.Series:
        y = pd.to_numeric(years, errors="coerce")
        lo = (y // width) * width
        text = lo.astype("Int64").astype("string") + "-" + (lo + width - 1).astype("Int64").astype("string")
        return text.fillna(SUPPRESSED)

    return band


def _grade_band(grades: pd.Series) -> pd.Series:
    g = pd.to_numeric(grades, errors="coerce")
    bins = [0, 4, 7, 9, 11, 99]
    labels = ["1-4", "5-7", "8-9", "10-11", "12+"]
    return pd.cut(g, bins=bins, labels=labels).astype("string").fillna(SUPPRESSED)


def _exact(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna(SUPPRESSED)


def _all(values: pd.Series) -> pd.Series:
    return pd.Series(SUPPRESSED, index=values.index, dtype="string")


@dataclass
class Hierarchy:
    column: str
    levels: list[tuple[str, Callable[[pd.Series], pd.Series]]]


OTHER_REGIONS = "other"


def hierarchies(organization_kind: dict[str, str], region_counts: pd.Series, k: int) -> dict[str, Hierarchy]:
    """The generalization ladder of each quasi-identifier; regions with few participants are pooled first."""

    def org_kind(values: pd.Series) -> pd.Series:
        return values.astype("string").map(organization_kind).astype("string").fillna(SUPPRESSED)

    large = set(region_counts[region_counts >= 20 * k].index.astype(str))

    def pooled(values: pd.Series) -> pd.Series:
        text = values.astype("string")
        return text.where(text.isin(large), OTHER_REGIONS).where(text.notna(), SUPPRESSED).astype("string")

    return {
        "birth_year": Hierarchy("birth_year", [("year", _exact), ("2 years", _year_band(2)),
                                               ("5 years", _year_band(5)), ("suppressed", _all)]),
        "region_group": Hierarchy("region_code", [("region", _exact), ("small regions pooled", pooled),
                                                  ("suppressed", _all)]),
        "settlement_group": Hierarchy("settlement_type", [("settlement type", _exact), ("suppressed", _all)]),
        "organization_group": Hierarchy("organization_id", [("organization", _exact),
                                                            ("organization kind", org_kind), ("suppressed", _all)]),
        "grade_group": Hierarchy("grade", [("grade", _exact), ("grade band", _grade_band), ("suppressed", _all)]),
    }


@dataclass
class Anonymized:
    frame: pd.DataFrame  # released quasi-identifier columns, index = input rows kept
    levels: dict[str, str]
    suppressed: int
    steps: list[str] = field(default_factory=list)


def class_sizes(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Size of each record's equivalence class (records sharing every quasi-identifier value)."""
    if frame.empty:
        return pd.Series([], dtype="int64")
    return frame.groupby(columns, dropna=False, sort=False)[columns[0]].transform("size").astype("int64")


def k_anonymity_violations(frame: pd.DataFrame, columns: list[str], k: int) -> int:
    """Number of records whose quasi-identifier combination occurs fewer than k times (0 = k-anonymous)."""
    return int((class_sizes(frame, columns) < k).sum())


def anonymize(qi: pd.DataFrame, h: dict[str, Hierarchy], k: int, max_suppression: float) -> Anonymized:
    """Datafly: generalize the quasi-identifier with most distinct values until few enough records violate k."""
    level = dict.fromkeys(h, 0)
    columns = list(h)
    steps = []

    def released() -> pd.DataFrame:
        return pd.DataFrame({name: h[name].levels[level[name]][1](qi[h[name].column]) for name in columns},
                            index=qi.index)

    budget = int(max_suppression * len(qi))
    current = released()
    while k_anonymity_violations(current, columns, k) > budget:
        candidates = [c for c in columns if level[c] < len(h[c].levels) - 1]
        if not candidates:
            break
        target = max(candidates, key=lambda c: (current[c].nunique(), -columns.index(c)))
        level[target] += 1
        steps.append(f"{target} -> {h[target].levels[level[target]][0]}")
        current = released()
    sizes = class_sizes(current, columns)
    keep = sizes >= k
    return Anonymized(
        frame=current[keep.to_numpy()],
        levels={c: h[c].levels[level[c]][0] for c in columns},
        suppressed=int((~keep).sum()),
        steps=steps,
    )


def load_key(env: dict[str, str], name: str = KEY_ENV) -> bytes:
    value = env.get(name, "")
    if len(value.encode("utf-8")) < MIN_KEY_BYTES:
        raise ValueError(f"no pseudonym key: set {name} to a secret of at least {MIN_KEY_BYTES} bytes")
    return value.encode("utf-8")


def research_export(
    tables: dict[str, pd.DataFrame], out_dir: Path, *, key: bytes, k: int = 5, max_suppression: float = 0.05,
    exported_at: str | None = None,
) -> dict[str, Any]:
    """Write the research data set of `tables` (store snapshot or AIF frames) into `out_dir`; return the report."""
    if k < 2:
        raise ValueError("k must be at least 2")
    people = tables["participants"].copy()
    if "birth_year" not in people.columns:
        people["birth_year"] = pd.to_datetime(people.get("birth_date")).dt.year.astype("Int64")
    for column in ("region_code", "settlement_type", "organization_id", "grade"):
        if column not in people.columns:
            people[column] = pd.NA
    consent = people["consent_research"].astype("boolean").fillna(False).to_numpy(dtype=bool) if (
        "consent_research" in people.columns) else np.zeros(len(people), dtype=bool)
    eligible = people[consent].reset_index(drop=True)

    orgs = tables.get("organizations", pd.DataFrame(columns=["organization_id", "kind"]))
    kinds = dict(zip(orgs["organization_id"].astype(str), orgs["kind"].astype(str), strict=True))
    regions = eligible["region_code"].astype("string").value_counts()
    anon = anonymize(eligible, hierarchies(kinds, regions, k), k, max_suppression)
    kept = eligible.loc[anon.frame.index]
    pids = _pseudonyms(key, kept["participant_id"])
    participants = pd.DataFrame({"participant_id": pids.to_numpy()})
    for column in anon.frame.columns:
        participants[column] = anon.frame[column].to_numpy()
    participants = participants.sort_values("participant_id").reset_index(drop=True)

    out: dict[str, pd.DataFrame] = {"participants": participants}
    kept_ids = set(kept["participant_id"].astype(str))
    if "achievements" in tables:
        ach = tables["achievements"]
        ach = ach[ach["participant_id"].astype(str).isin(kept_ids)].copy()
        ach["participant_id"] = _pseudonyms(key, ach["participant_id"])
        # Source-system ids could be joined back to the source; they are not needed for research.
        ach = ach.drop(columns=[c for c in ("achievement_id", "extra") if c in ach.columns])
        out["achievements"] = ach.sort_values(["participant_id", "event_id", "role"]).reset_index(drop=True)
    for name in ("competences", "organizations", "resource_centers", "events", "teams", "programs"):
        if name in tables:
            out[name] = tables[name].drop(columns=["extra"], errors="ignore").copy()
    if "mentors" in tables:
        # A mentor's participant record would link an adult's mentoring to a pseudonym: dropped.
        out["mentors"] = tables["mentors"].drop(columns=["participant_id", "extra"], errors="ignore").copy()
    for name, frame in out.items():
        dropped = [c for c in frame.columns if c in IDENTITY_FIELDS or c in ("grade_date", "source", "pk")]
        out[name] = frame.drop(columns=dropped)

    write_dataset(Path(out_dir), out, {"source": "research-export", "exported_at": exported_at}, fmt="csv")
    columns = list(QUASI_IDENTIFIERS)
    sizes = class_sizes(participants, columns)
    report = {
        "k": k,
        "quasi_identifiers": columns,
        "participants_in_input": len(people),
        "participants_without_research_consent": int((~consent).sum()),
        "participants_eligible": len(eligible),
        "participants_exported": len(participants),
        "participants_suppressed": anon.suppressed,
        "max_suppression": max_suppression,
        "generalization": anon.levels,
        "generalization_steps": anon.steps,
        "equivalence_classes": int(participants.groupby(columns, dropna=False).ngroups) if len(participants) else 0,
        "smallest_class": int(sizes.min()) if len(sizes) else 0,
        "k_anonymous": k_anonymity_violations(participants, columns, k) == 0,
        "achievements_exported": len(out.get("achievements", [])),
        "pseudonyms": "HMAC-SHA256 of participant_id under a secret key (not stored)",
        "removed": ["last_name", "first_name", "middle_name", "email", "birth_date", "gender", "achievement_id",
                    "mentors.participant_id", "exact quasi-identifiers"],
    }
    (Path(out_dir) / REPORT_FILE).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report
