"""The oracle: true probabilities of each open event being a participant's next choice on a date."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.synth.choice import choice_state, softmax_rows, utility_blocks
from recommender.synth.dates import days_to_datetime, to_day
from recommender.synth.truth import Truth, load_truth

# Participants x candidate cells per block: bounds memory whatever the number of participants.
MAX_CELLS = 2_000_000


def _participant_rows(truth: Truth, participant_ids: Sequence[str] | None) -> np.ndarray:
    if participant_ids is None:
        return np.arange(len(truth.participant_ids), dtype=np.int64)
    index = pd.Index(truth.participant_ids)
    rows = index.get_indexer(pd.Index(list(participant_ids), dtype=object))
    return np.unique(rows[rows >= 0])


def choice_probabilities(
    world_dir: Path,
    as_of: date,
    participant_ids: Sequence[str] | None = None,
    *,
    truth: Truth | None = None,
) -> pd.DataFrame:
    """participant_id, event_id (categoricals), probability: the generating choice model on `as_of`.

    For each participant the probabilities over the events open to them on `as_of` (registration open,
    not started, grade eligible, reachable, capacity left, qualified for a stage, not yet taken) sum to 1;
    the state is rebuilt from the world's record strictly before `as_of`, with the very utility function
    the generator used. Participants with no open event have no rows. Unknown ids are ignored.
    """
    t = truth or load_truth(world_dir)
    ch = t.chooser()
    state = choice_state(ch, t.history, to_day(as_of))
    rows = _participant_rows(t, participant_ids)
    region = ch.region[rows]
    order = np.argsort(region, kind="stable")
    bounds = np.searchsorted(region[order], np.arange(ch.n_regions + 1))
    out_p: list[np.ndarray] = []
    out_e: list[np.ndarray] = []
    out_v: list[np.ndarray] = []
    for r in range(ch.n_regions):
        members = rows[order[bounds[r] : bounds[r + 1]]]
        for block in utility_blocks(ch, state, r, members, MAX_CELLS):
            prob = softmax_rows(block.utility)
            i, j = np.nonzero(np.isfinite(block.utility))
            out_p.append(block.participants[i])
            out_e.append(block.events[j])
            out_v.append(prob[i, j].astype(np.float64))
    p = np.concatenate(out_p) if out_p else np.zeros(0, np.int64)
    e = np.concatenate(out_e) if out_e else np.zeros(0, np.int64)
    v = np.concatenate(out_v) if out_v else np.zeros(0, np.float64)
    # Categorical ids: tens of millions of rows stay a few bytes each.
    return pd.DataFrame({
        "participant_id": pd.Categorical.from_codes(
            np.searchsorted(rows, p).astype(np.int32), categories=pd.Index(t.participant_ids[rows], dtype="string")
        ),
        "event_id": pd.Categorical.from_codes(e.astype(np.int32), categories=pd.Index(t.event_ids, dtype="string")),
        "probability": v,
    })


def true_next_choices(
    world_dir: Path, as_of: date, horizon_days: int = 30, *, truth: Truth | None = None
) -> pd.DataFrame:
    """participant_id, event_id, registered_on: the registrations actually made in [as_of, as_of + horizon)."""
    t = truth or load_truth(world_dir)
    h = t.history
    lo, hi = to_day(as_of), to_day(as_of + timedelta(days=horizon_days))
    sel = (h.reg_day >= lo) & (h.reg_day < hi)
    return pd.DataFrame({
        "participant_id": pd.array(t.participant_ids[h.reg_participant[sel]], dtype="string"),
        "event_id": pd.array(t.event_ids[h.reg_event[sel]], dtype="string"),
        "registered_on": days_to_datetime(h.reg_day[sel]),
    })
