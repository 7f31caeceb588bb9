"""The alternative world's oracle: its true next-choice probabilities and true registrations on any date.

Same signatures and columns as the product's recommender.synth.oracle (choice_probabilities,
true_next_choices), computed by alt_choice from the alternative truth format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from alt_calendar import EPOCH
from alt_catalog import Catalog
from alt_choice import BatchState, Chooser, TasteCoefficients, open_events, probability_blocks
from alt_results import QUALIFYING, R


@dataclass
class AltTruth:
    participant_ids: np.ndarray
    event_ids: np.ndarray
    chooser: Chooser
    registrations: pd.DataFrame  # participant_idx, event_idx, day
    results: pd.DataFrame  # participant_idx, event_idx, day, result, ...


def _truth_dir(path: Path) -> Path:
    path = Path(path)
    return path / "truth" if (path / "truth").is_dir() else path


def load_alt_truth(world_dir: Path) -> AltTruth:
    d = _truth_dir(world_dir)
    meta = json.loads((d / "world.json").read_text(encoding="utf-8"))
    comps, tastes = meta["competences"], meta["tastes"]
    parts = pd.read_parquet(d / "participants.parquet")
    ev = pd.read_parquet(d / "events.parquet")
    weights = ev[[f"w_{c}" for c in comps]].to_numpy(np.float32)
    catalog = Catalog(**{name: ev[name].to_numpy() for name in (
        "series", "season", "stage", "format", "level", "region", "reg_open", "reg_deadline", "start", "end",
        "min_grade", "max_grade", "capacity", "team_min", "team_max", "parent", "child", "prestige")},
        weights=weights)
    chooser = Chooser(
        region=parts["region_idx"].to_numpy(np.int16), settlement=parts["settlement"].to_numpy(np.int8),
        birth_year=parts["birth_year"].to_numpy(np.int16),
        taste=parts[[f"taste_{t}" for t in tastes]].to_numpy(np.float32),
        interest=parts[[f"interest_{c}" for c in comps]].to_numpy(np.float32),
        catalog=catalog, coef=TasteCoefficients.from_dict(meta["choice"]),
    )
    return AltTruth(parts["participant_id"].to_numpy(dtype=object), ev["event_id"].to_numpy(dtype=object), chooser,
                    pd.read_parquet(d / "registrations.parquet"), pd.read_parquet(d / "results.parquet"))


def _day(when: date) -> int:
    return (when - EPOCH).days


def batch_state(t: AltTruth, as_of: date, participants: np.ndarray) -> BatchState:
    """The state of these participants strictly before `as_of`, rebuilt from the recorded history."""
    d = _day(as_of)
    cat = t.chooser.catalog
    regs, res = t.registrations, t.results
    before = regs[regs["day"].to_numpy() < d]
    used = np.bincount(before["event_idx"].to_numpy(), minlength=cat.n)
    row_of = np.full(len(t.participant_ids), -1, dtype=np.int64)
    row_of[participants] = np.arange(len(participants))
    tr = row_of[before["participant_idx"].to_numpy()]
    te = before["event_idx"].to_numpy()
    known = res[res["day"].to_numpy() < d]
    good = (known["result"].to_numpy() >= QUALIFYING) & (known["result"].to_numpy() != R["dropped"])
    kp, ke = known["participant_idx"].to_numpy()[good], known["event_idx"].to_numpy()[good]
    reached_all = np.full(len(t.participant_ids), -1, dtype=np.int8)
    np.maximum.at(reached_all, kp, cat.level[ke])
    child = cat.child[ke]
    qr = row_of[kp]
    q = (qr >= 0) & (child >= 0)
    return BatchState(
        day=d, open_events=open_events(cat, d, used), participants=participants.astype(np.int32),
        reached=reached_all[participants], taken_rows=tr[tr >= 0], taken_events=te[tr >= 0].astype(np.int32),
        qual_rows=qr[q], qual_events=child[q].astype(np.int32),
    )


def choice_probabilities(world_dir: Path, as_of: date, participant_ids: Sequence[str] | None = None, *,
                         truth: AltTruth | None = None) -> pd.DataFrame:
    """participant_id, event_id, probability: the generating choice model on `as_of` (rows sum to 1 per
    participant over the events open to them; participants with nothing open have no rows)."""
    t = truth or load_alt_truth(world_dir)
    if participant_ids is None:
        rows = np.arange(len(t.participant_ids))
    else:
        found = pd.Index(t.participant_ids).get_indexer(pd.Index(list(participant_ids), dtype=object))
        rows = np.unique(found[found >= 0])
    state = batch_state(t, as_of, rows)
    out_p, out_e, out_v = [], [], []
    for block in probability_blocks(t.chooser, state):
        i, j = np.nonzero(block.probability > 0)
        out_p.append(block.participants[i])
        out_e.append(block.events[j])
        out_v.append(block.probability[i, j])
    if not out_p:
        return pd.DataFrame({"participant_id": pd.array([], dtype="string"), "event_id": pd.array([], dtype="string"),
                             "probability": np.zeros(0)})
    return pd.DataFrame({
        "participant_id": pd.array(t.participant_ids[np.concatenate(out_p)], dtype="string"),
        "event_id": pd.array(t.event_ids[np.concatenate(out_e)], dtype="string"),
        "probability": np.concatenate(out_v),
    })


def true_next_choices(world_dir: Path, as_of: date, horizon_days: int = 30, *,
                      truth: AltTruth | None = None) -> pd.DataFrame:
    """participant_id, event_id, registered_on: the registrations actually made in [as_of, as_of + horizon)."""
    t = truth or load_alt_truth(world_dir)
    regs = t.registrations
    lo, hi = _day(as_of), _day(as_of + timedelta(days=horizon_days))
    sel = regs[(regs["day"] >= lo) & (regs["day"] < hi)]
    return pd.DataFrame({
        "participant_id": pd.array(t.participant_ids[sel["participant_idx"].to_numpy()], dtype="string"),
        "event_id": pd.array(t.event_ids[sel["event_idx"].to_numpy()], dtype="string"),
        "registered_on": sel["day"].to_numpy().astype("datetime64[D]").astype("datetime64[s]"),
    })
