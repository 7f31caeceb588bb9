"""Ranking features of (participant, event) pairs at a date, from the graph known before that date."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.series import SeriesMap, series_map
from recommender.columns import EVENT_FORMATS, LEVELS, Columns
from recommender.graph import QUALIFYING_RESULTS, AchievementsGraph, day_number, online_flags, to_timestamp

# Recent activity says more about current interests than old activity.
INTEREST_HALF_LIFE_DAYS = 365.0
# Weight of declared interests beside a history whose achievements weigh about 1 each (see with_declared_interests).
DECLARED_WEIGHT = 3.0
# Skills grow most where interests lie, so a good result says more of one's interests than taking part:
# an achievement weighs exp(RESULT_WEIGHT * (result_rank - 2)) (2: completed, 5: winner, -1: dropped).
RESULT_WEIGHT = 0.3
# Measured, not kept: spreading the profile over co-occurring competences (profile + b * profile @ C, C the
# competences' co-occurrence over participants) left the true interest the ten best-ranked open events carry at
# 0.653-0.655 for b = 0.2-1.0 (interest_diagnostics.py's measure, 100k world seed 11, 2025-03-01). Nor did a
# format affinity (one's format shares through the formats' co-occurrence) as a feature move the alternative world
# (NDCG@10 0.3338 -> 0.3347, training seed 0, paired_reranker.py at 2024-11-01), whose tastes are formats.
# Nor a sharpened profile (entries cubed, rows L1 again) . event competences as one more feature, though it ranks
# by true interest a little better (0.695 -> 0.705 there, 0.653 -> 0.659 here): NDCG@10 -0.0008 (se 0.0010) here,
# +0.0000 (se 0.0011) there. Nor a series' count and share of participants it was the first event of (-0.0118,
# se 0.0017, there). Nor, for rural participants with short histories (who trail urban ones against the oracle
# here: 0.83-0.84 of its NDCG@10 against 0.87-0.91), the share of one's region's participants of one's settlement
# (rural or not) who took the series: +0.0014 (se 0.0010) here and +0.0014 (se 0.0011) there with training seed 0,
# -0.0031 (se 0.0009) here with seed 1. Where the rest lies there: experiments/worlds/ceiling_alt.py.
SETTLEMENT_CODES = {"city": 0, "town": 1, "rural": 2}

FEATURES = (
    "interest_dot",  # competence profile (achievements by recency and result, declared interests) . event competences
    "interest_cos",
    "interest_top",  # share of the event's weight in the participant's strongest competence
    "declared_dot",  # declared interests alone (sign-up form, L1) . event competences (0: none declared)
    "history_events",  # events taken (log)
    "level_gap",  # event level - (highest qualifying level + 1)
    "level_gap_abs",
    "reached_level",
    "level_taken_gap",  # event level - mean level of the events taken (nan: none taken)
    "event_level",
    "qualified_stage",  # the event is the next stage of one the participant qualified at
    "stage_event",  # the event has a previous stage at all
    "series_taken",  # editions of this series taken before (log)
    "format_share",  # share of the participant's events in this format
    "online",
    "online_share",  # share of the participant's events that were online (0: none taken)
    "settlement",  # 0 city, 1 town, 2 rural, -1 unknown
    "offline_rural",  # offline event x rural participant
    "offline_town",
    "series_popularity",  # participations in the series before (log)
    "series_popularity_region",  # ... by people of the participant's region (log)
    "series_popularity_grade",  # ... by people of the participant's grade (log)
    "format_popularity",  # mean participations per event of the format and level (log)
    "schoolmates_series",  # schoolmates who took the series (log)
    "teammates_series",  # former teammates who took the series (log)
    "mentor_fit",  # latest mentor's competences . event competences
    "weeks_to_start",
    "registration_open_days",  # days since registration opened (nan: opening unknown)
    "registration_left_days",  # days until registration closes (the deadline, else the start)
    "registration_left_share",  # share of the registration window still ahead (nan: opening unknown)
    "grade",
    "grade_span",  # event max grade - participant grade (nan when unknown)
    "format",
    "team_event",
    "capacity",  # log(1 + the event's capacity) (nan: unknown or unlimited)
    "series_fill",  # participations / capacity over the series' finished editions with a capacity (nan: none)
    "series_region_share",  # share of the region's participants with a history who took the series
    "edition_popularity",  # log mean participations per finished edition of the series at the event's level (nan: none)
    "edition_relative",  # edition_popularity - format_popularity: above or below events of its format and level
    "series_level_share",  # share of the participants of one's target level (reached + 1) who took the series
)
CATEGORICAL = ("format",)
_COLUMN = {name: i for i, name in enumerate(FEATURES)}
# Up to this many participants, cross features are summed row by row with numpy (a request); a larger block
# (training, batch recommendations) takes one sparse product.
FEW_PARTICIPANTS = 16
# Sparse rows are gathered densely up to this many cells; larger blocks go through scipy's slicing.
DENSE_GATHER_CELLS = 4_000_000


@dataclass
class RankingContext:
    """Everything per participant and per event that the pair features are gathered from."""

    as_of: pd.Timestamp
    series: SeriesMap
    profile: sp.csr_matrix  # participants x competences, L1 rows (see with_declared_interests)
    declared: sp.csr_matrix  # participants x competences: declared interests, L1 rows (empty: none declared)
    history_events: np.ndarray
    reached_level: np.ndarray  # -1 when nothing reached
    level_taken: np.ndarray  # mean level of the events taken (nan: none)
    qualified: sp.csr_matrix  # participants x events
    participant_series: sp.csr_matrix
    format_share: np.ndarray  # participants x formats
    online_share: np.ndarray  # share of the events taken that were online
    settlement: np.ndarray
    grade: np.ndarray
    region_code: np.ndarray  # participant region position (-1 unknown)
    series_pop: np.ndarray
    series_region_pop: sp.csr_matrix  # regions x series
    series_grade_pop: sp.csr_matrix  # grades x series
    series_level_pop: sp.csr_matrix  # target levels (reached + 1, 0 when nothing reached) x series
    format_level_pop: pd.Series
    # Ties, kept as factors (schoolmates and teammates per series are products of these, made per block: for
    # everyone at once they are the largest arrays by far, 160 MiB at 100,000 participants):
    regions: pd.Index  # region names, sorted (positions are region_code)
    school: np.ndarray  # organization position per participant (-1: none)
    schools: pd.Index
    school_series: sp.csr_matrix  # schools x series: members who took the series
    participant_team: sp.csr_matrix  # participants x teams (binary)
    team_participants: sp.csr_matrix  # teams x participants (binary)
    mentor_competences: sp.csr_matrix  # participants x competences (latest mentor)
    event_competence: sp.csr_matrix  # events x competences
    # Derived once per context, so that a request only indexes them:
    events: EventSide
    profile_l2: L2Rows
    top_competence: np.ndarray  # strongest competence of the profile (0 when empty)
    has_profile: np.ndarray
    event_series: np.ndarray  # series position of every event (-1: a series unknown to the context)
    event_series_popularity: np.ndarray  # log participations in the event's series
    event_format_popularity: np.ndarray  # log mean participations per event of its format and level
    event_series_fill: np.ndarray  # float32 participations / capacity of the series' finished editions (nan: none)
    region_active: np.ndarray  # participants with a history per region code
    event_edition_popularity: np.ndarray  # float32 log mean participations per finished edition at its level
    level_group_size: np.ndarray  # participants per target level


def _log1p(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(x, 0.0))


def _binarize(m: sp.csr_matrix) -> sp.csr_matrix:
    m = m.tocsr(copy=True)
    m.data[:] = 1.0
    return m


def _rows_normalized(m: sp.csr_matrix, norm: str = "l1") -> sp.csr_matrix:
    m = m.tocsr().astype(np.float32)
    if norm == "l1":
        sums = np.asarray(abs(m).sum(axis=1)).ravel()
    else:
        sums = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    sums[sums == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums) @ m)


def _sorted_rows(m: sp.csr_matrix) -> np.ndarray:
    """Per row: are its column indices strictly increasing (what scipy calls canonical)?"""
    n = m.shape[0]
    ok = np.ones(n, dtype=bool)
    if m.nnz > 1:
        row = np.repeat(np.arange(n), np.diff(m.indptr))
        inside = row[1:] == row[:-1]
        ok[row[1:][inside & (np.diff(m.indices) <= 0)]] = False
    return ok


@dataclass(frozen=True)
class L2Rows:
    """A matrix's rows L2-normalized exactly as `_rows_normalized(m[block], "l2")` gives them for any block.

    scipy squares a block's entries in another order when every row of the block is sorted (its canonical
    path) than otherwise, which can move a norm by one ulp; both results are kept, so one participant's
    request reads the same bits as the reference computation of that block.
    """

    sorted_rows: np.ndarray
    canonical: sp.csr_matrix  # sorted rows normalized on the canonical path (other rows empty)
    general: sp.csr_matrix  # every row normalized on the general path

    @classmethod
    def of(cls, m: sp.csr_matrix) -> L2Rows:
        m = m.tocsr()
        sorted_rows = _sorted_rows(m)
        lengths = np.diff(m.indptr) * sorted_rows
        keep = np.repeat(sorted_rows, np.diff(m.indptr))
        only_sorted = sp.csr_matrix(
            (m.data[keep], m.indices[keep], np.concatenate([[0], np.cumsum(lengths)])), shape=m.shape
        )
        canonical = _rows_normalized(only_sorted, "l2")
        general = canonical if sorted_rows.all() else _rows_normalized(m, "l2")
        return cls(sorted_rows, canonical, general)

    def for_block(self, rows: np.ndarray) -> sp.csr_matrix:
        """The normalized matrix whose rows `rows` are those of normalizing that block of rows."""
        return self.canonical if self.sorted_rows[rows].all() else self.general


@dataclass(frozen=True)
class EventSide:
    """What the pair features read of every event at a date; built once per (events table, date)."""

    as_of: pd.Timestamp
    competence: sp.csr_matrix  # events x competences
    competence_t: np.ndarray  # dense competences x events
    competence_l1: np.ndarray  # dense events x competences, L1-normalized rows
    competence_l2: L2Rows
    competence_l2_t: tuple[np.ndarray, np.ndarray]  # dense transposes of competence_l2.canonical, .general
    level: np.ndarray  # float32 level rank
    parent: np.ndarray  # position of the previous stage (-1: none, or not in the graph)
    format_code: np.ndarray
    online: np.ndarray  # float32
    weeks_to_start: np.ndarray  # float32
    registration_open_days: np.ndarray  # float32, nan unknown
    registration_left_days: np.ndarray  # float32
    registration_left_share: np.ndarray  # float32, nan unknown
    max_grade: np.ndarray  # float32, nan unknown
    team_event: np.ndarray  # float32
    capacity: np.ndarray  # float32 log(1 + capacity), nan unknown or unlimited
    capacity_raw: np.ndarray  # float64 capacity, nan unknown or unlimited
    ended: np.ndarray  # bool: the event ended before the date (its participations are all dated)
    series_key: np.ndarray  # str
    format_level: np.ndarray  # str, "format/level"

    @property
    def n_events(self) -> int:
        return len(self.level)

    def competence_l2_for(self, events: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        """L2-normalized competences of all events as that block of events gets them, sparse and transposed."""
        if self.competence_l2.sorted_rows[events].all():
            return self.competence_l2.canonical, self.competence_l2_t[0]
        return self.competence_l2.general, self.competence_l2_t[1]


def event_side(graph: AchievementsGraph, as_of: pd.Timestamp | str) -> EventSide:
    """Participant-independent columns of every event of the graph at `as_of` (no achievement is read)."""
    now = to_timestamp(as_of)
    ev = graph.events
    n_e = len(ev)
    ec = graph.event_competence().tocsr()
    l2 = L2Rows.of(ec)
    l2_t = (np.ascontiguousarray(l2.canonical.toarray().T), np.ascontiguousarray(l2.general.toarray().T))
    if Columns.ParentEvent in ev.columns:
        parent = np.asarray(graph.event_index.get_indexer(ev[Columns.ParentEvent].astype("string").fillna("")))
    else:
        parent = np.full(n_e, -1, dtype=np.int64)
    max_grade = ev["max_grade"].astype("Float64").astype("float64").to_numpy(np.float32) \
        if "max_grade" in ev.columns else np.full(n_e, np.nan, np.float32)
    team_max = ev["team_max"].astype("Float64").fillna(1).astype("float64").to_numpy(np.float32) \
        if "team_max" in ev.columns else np.ones(n_e, np.float32)
    arrays = graph.event_arrays
    capacity = np.where(arrays.capacity > 0, arrays.capacity, np.nan)  # 0: unlimited
    finished = np.where(np.isnan(arrays.end), arrays.start, arrays.end) < day_number(now)
    return EventSide(
        as_of=now, competence=ec, competence_t=np.ascontiguousarray(ec.toarray().T),
        competence_l1=_rows_normalized(ec, "l1").toarray(), competence_l2=l2, competence_l2_t=l2_t,
        level=ev["level_rank"].to_numpy(np.float32),
        parent=parent.astype(np.int64),
        format_code=ev["format"].map({f: i for i, f in enumerate(EVENT_FORMATS)}).fillna(0).to_numpy(np.int64),
        online=online_flags(ev).astype(np.float32),
        weeks_to_start=(ev[Columns.StartDate] - now).dt.days.to_numpy(np.float32) / 7.0,
        **_registration_window(graph, now),
        max_grade=max_grade,
        team_event=(team_max > 1).astype(np.float32),
        capacity=np.where(np.isnan(capacity), np.nan, np.log1p(np.nan_to_num(capacity))).astype(np.float32),
        capacity_raw=capacity, ended=finished,
        series_key=graph.series_keys().to_numpy().astype(str),
        format_level=(ev["format"].astype(str) + "/" + ev["level"].astype(str)).to_numpy(),
    )


def _registration_window(graph: AchievementsGraph, now: pd.Timestamp) -> dict[str, np.ndarray]:
    """Where each event's registration window stands at `now`, from the catalog's dates only.

    Next steps are the registrations made from now on: an event whose window opened long ago has had most of
    its registrations already (unseen when results are dated at the event), one about to close has few chances
    left. On the 100k world (seed 11, 10,000 evaluated participants) they lifted the re-ranker's NDCG@10 at the
    2025-03-01 cut from 0.3698 to 0.3903 (0.767 -> 0.809 of the oracle; paired +0.0205, s.e. 0.0016) and left
    the 2024-11-01 cut where it was (0.4495 -> 0.4475, paired -0.0020, s.e. 0.0013). Labels thinned by the share
    of the window already gone (to mimic "registered after the cut") did not help (0.3861).
    """
    ev = graph.event_arrays
    today = day_number(now)
    closes = np.where(np.isnan(ev.deadline), ev.start, ev.deadline)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.clip((closes - today) / np.maximum(closes - ev.opens, 1.0), 0.0, 1.0)
    return {
        "registration_open_days": (today - ev.opens).astype(np.float32),
        "registration_left_days": (closes - today).astype(np.float32),
        "registration_left_share": share.astype(np.float32),
    }


def _take(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Dense `m[rows][:, cols]`, for a few rows without building intermediate sparse matrices."""
    if len(rows) * m.shape[1] > DENSE_GATHER_CELLS:
        return np.asarray(m[rows][:, cols].toarray())
    rows = np.where(rows < 0, rows + m.shape[0], rows)
    if len(rows) == 1:  # a request: one row, no index arithmetic
        start, end = m.indptr[rows[0]], m.indptr[rows[0] + 1]
        row = np.zeros(m.shape[1], dtype=m.dtype)
        if m.has_canonical_format:
            row[m.indices[start:end]] = m.data[start:end]
        else:
            np.add.at(row, m.indices[start:end], m.data[start:end])
        return row[cols][None, :]
    dense = np.zeros((len(rows), m.shape[1]), dtype=m.dtype)
    starts = m.indptr[rows]
    counts = m.indptr[rows + 1] - starts
    total = int(counts.sum())
    if total:
        pos = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
        at = (np.repeat(np.arange(len(rows)), counts), m.indices[pos])
        if m.has_canonical_format:
            dense[at] = m.data[pos]
        else:  # duplicates are summed in stored order, as toarray() does
            np.add.at(dense, at, m.data[pos])
    return dense[:, cols]


def _cross(
    left: sp.csr_matrix, rows: np.ndarray, right: sp.csr_matrix, right_t: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Dense `left[rows] @ right[cols].T`, every cell summed in scipy's order (a left row's entries as stored)."""
    if len(rows) > FEW_PARTICIPANTS:
        return np.asarray((left[rows] @ right[cols].T).toarray())
    dtype = np.result_type(left.dtype, right.dtype)
    out = np.zeros((len(rows), len(cols)), dtype=dtype)
    if not len(cols):
        return out
    for i, r in enumerate(rows):
        start, end = left.indptr[r], left.indptr[r + 1]
        if start == end:
            continue
        # Only the cells of the row's own competences and the asked columns are gathered (not whole rows of
        # all events: 60,000 of them at 1,000,000 participants).
        sub = right_t[left.indices[start:end][:, None], cols[None, :]].astype(dtype, copy=False)
        acc = out[i]
        for j, v in enumerate(left.data[start:end]):
            acc += v * sub[j]
    return out


def with_declared_interests(history: sp.csr_matrix, declared: sp.csr_matrix, *, any_declared: bool | None = None
                            ) -> sp.csr_matrix:
    """The interest profile (L1 rows) of a history's competence sums (rows: participants; an achievement adds its
    event's competence weights, which sum to 1, times its recency and result weight) with declared interests
    (sign-up form, L1-normalized) added at DECLARED_WEIGHT: alone for those with no history (cold start), a prior
    that a long history outweighs.

    What one said weighs as much as three achievements: on the 100k world (seed 11, cut 2025-03-01), ranking the
    open events by the profile put on average 0.618 of the true interest of the best ten in the top ten with the
    declaration at a fixed 0.3 beside the history's unit weight, 0.647 at 3 achievements (0.649 at 5 or more),
    and 0.653 with results weighted too (RESULT_WEIGHT): choices follow reach, level and friends as well as
    interests, a declaration only interests. The re-ranker's NDCG@10 (paired_reranker.py, 10k participants) rose
    by +0.0061 over training seeds 0-2 at that cut (-0.0013, +0.0093, +0.0102), by +0.0099 at 2024-11-01 and by
    +0.0063 on the alternative world (100k seed 5, 2024-11-01). Mixed into the profile, and since then also given
    alone as `declared_dot`: as the only carrier (the 20k world) it moved NDCG@10 by -0.03..+0.02 from cut to cut;
    beside the mix it gave +0.0033 (se 0.0010) at the 100k world's spring cut and +0.0006 (0.0012) on the
    alternative world.
    `any_declared` (whether anyone of the whole graph declared anything) keeps a block of rows on the path of the
    whole matrix. Each row is computed from that row alone, in sorted column order.
    """
    declared = _rows_normalized(declared)
    if not (declared.nnz if any_declared is None else any_declared):
        return _canonical(_rows_normalized(history))
    return _canonical(_rows_normalized(_canonical(history) + _canonical(sp.csr_matrix(declared * DECLARED_WEIGHT))))


def _canonical(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows with sorted, distinct columns. scipy picks a sum's path by whether a whole matrix is canonical, and
    the order of a row's entries sets the bits of sums over it: sorted rows make a row's values its own."""
    m = sp.csr_matrix(m, copy=True)
    m.sum_duplicates()
    return m


@dataclass(frozen=True)
class _ParticipantRows:
    """What the context holds per participant and reads of that participant's achievements only."""

    profile: sp.csr_matrix
    declared: sp.csr_matrix
    history_events: np.ndarray
    reached_level: np.ndarray
    level_taken: np.ndarray
    format_share: np.ndarray
    online_share: np.ndarray
    participant_series: sp.csr_matrix
    participant_team: sp.csr_matrix
    mentor_competences: sp.csr_matrix


def _participant_rows(g: AchievementsGraph, now: pd.Timestamp, series: SeriesMap, positions: np.ndarray | None
                      ) -> _ParticipantRows:
    """Those rows for the participants at `positions` (sorted, distinct; None: everyone), each row computed the
    same way whatever the block."""
    a = g.achievements
    p_all = a["participant_idx"].to_numpy()
    pick: slice | np.ndarray
    if positions is None:
        n, local, pick = g.n_participants, p_all, slice(None)
    else:
        mask = np.isin(p_all, positions)
        pick = np.flatnonzero(mask)
        n, local = len(positions), np.searchsorted(positions, p_all[pick])
    a_e = a["event_idx"].to_numpy()[pick]
    n_e = g.n_events
    age_days = (now - a[Columns.Date].iloc[pick]).dt.days.to_numpy(dtype=np.float64)
    recency = np.power(0.5, age_days / INTEREST_HALF_LIFE_DAYS)
    result = a["result_rank"].to_numpy(np.float64)[pick]
    recency = (recency * np.exp(RESULT_WEIGHT * (result - 2.0))).astype(np.float32)
    weighted_pe = sp.csr_matrix((recency, (local, a_e)), shape=(n, n_e))
    history = np.bincount(local, minlength=n).astype(np.float64)
    interests = g.participant_interests()
    declared = interests if positions is None else interests[positions]
    profile = with_declared_interests(sp.csr_matrix(weighted_pe @ g.event_competence()), declared,
                                      any_declared=bool(interests.nnz))

    level = g.events["level_rank"].to_numpy(dtype=np.int64)
    qualifying = a[Columns.Result].iloc[pick].isin(QUALIFYING_RESULTS).to_numpy()
    reached = np.full(n, -1, dtype=np.int64)
    np.maximum.at(reached, local[qualifying], level[a_e[qualifying]])
    with np.errstate(invalid="ignore", divide="ignore"):
        level_taken = np.bincount(local, weights=level[a_e].astype(np.float64), minlength=n) / history

    formats = g.events["format"].map({f: i for i, f in enumerate(EVENT_FORMATS)}).fillna(0).to_numpy(np.int64)
    fmt_counts = np.zeros((n, len(EVENT_FORMATS)))
    np.add.at(fmt_counts, (local, formats[a_e]), 1.0)
    fmt_share = fmt_counts / np.maximum(history, 1.0)[:, None]
    online_share = np.bincount(local, weights=g.event_arrays.online[a_e].astype(np.float64), minlength=n) / np.maximum(
        history, 1.0)

    s_idx = series.of_event[a_e]
    ps = sp.csr_matrix((np.ones(len(s_idx), np.float32), (local, s_idx)), shape=(n, series.n_series))
    ps.sum_duplicates()
    team_idx = a["team_idx"].to_numpy()[pick]
    in_team = team_idx >= 0
    team = sp.csr_matrix((np.ones(int(in_team.sum()), np.float32), (local[in_team], team_idx[in_team])),
                         shape=(n, len(g.teams)))
    team.data[:] = 1.0
    return _ParticipantRows(
        profile=profile, declared=_canonical(_rows_normalized(declared)), history_events=history,
        reached_level=reached, level_taken=level_taken, format_share=fmt_share, online_share=online_share,
        participant_series=ps, participant_team=team,
        mentor_competences=_latest_mentor_competences(g, positions, pick if isinstance(pick, np.ndarray) else None),
    )


def build_context(
    graph: AchievementsGraph, as_of: pd.Timestamp | str, events: EventSide | None = None
) -> RankingContext:
    """Per-participant and per-event state from the graph's rows dated before `as_of`.

    `events` is the graph's `event_side` at `as_of` when the caller keeps one (it does not depend on the
    achievements, so it outlives graphs that only gain achievements).
    """
    now = to_timestamp(as_of)
    g = graph if graph.known_before(now) else graph.as_of(now)
    side = events if events is not None else event_side(g, now)
    if side.as_of != now or side.n_events != g.n_events:
        raise ValueError("the event side was built for another date or events table")
    n_p = g.n_participants
    series = series_map(g)
    rows = _participant_rows(g, now, series, None)
    p = g.participants
    settlement = (
        p["settlement_type"].map(SETTLEMENT_CODES).astype("Float64").fillna(-1).to_numpy(np.float64)
        if "settlement_type" in p.columns else np.full(n_p, -1.0)
    )
    region_names = p[Columns.Region].astype("string").fillna("") if Columns.Region in p.columns \
        else pd.Series([""] * n_p)
    region_codes, regions = pd.factorize(region_names, sort=True)
    grade = g.grades_at(now)
    if Columns.Organization in p.columns:
        school, schools = pd.factorize(p[Columns.Organization].astype("string"))
    else:
        school, schools = np.full(n_p, -1, np.int64), pd.Index([], dtype="string")
    taken = _binarize(rows.participant_series)
    team = rows.participant_team
    return _assemble(
        g, now, side, series, rows, settlement=settlement, grade=grade, region_code=region_codes.astype(np.int64),
        regions=pd.Index(regions), school=school.astype(np.int64), schools=pd.Index(schools),
        series_pop=np.asarray(taken.sum(axis=0)).ravel(),
        series_region_pop=_group_sums(region_codes, max(len(regions), 1), taken),
        series_grade_pop=_group_sums(_grade_codes(grade), 20, taken),
        series_level_pop=_group_sums(_level_codes(rows.reached_level), len(LEVELS), taken),
        school_series=_group_sums(school, max(len(schools), 1), taken),
        team_participants=team.T.tocsr(),
    )


def _level_codes(reached_level: np.ndarray) -> np.ndarray:
    """The target level "one above the level reached" (0 when nothing was reached), as the level gap reads it."""
    return np.clip(np.asarray(reached_level, np.int64) + 1, 0, len(LEVELS) - 1)


def _grade_codes(grade: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(grade, nan=0.0), 0, 19).astype(np.int64)


def _group_sums(codes: np.ndarray, n_groups: int, taken: sp.csr_matrix) -> sp.csr_matrix:
    """groups x series: participants of each group (code; -1: none) who took each series."""
    known = codes >= 0
    onehot = sp.csr_matrix((np.ones(int(known.sum()), np.float32), (codes[known], np.flatnonzero(known))),
                           shape=(n_groups, len(codes)))
    return sp.csr_matrix(onehot @ taken)


def _profile_derived(profile: sp.csr_matrix) -> tuple[L2Rows, np.ndarray, np.ndarray]:
    """L2 rows, strongest competence (0 when empty) and whether there is a profile, per row of the profile."""
    # argmax sorts a matrix's indices in place: on a copy, so that the profile keeps its order of sums.
    return (L2Rows.of(profile), np.asarray(profile.copy().argmax(axis=1)).ravel(),
            np.asarray(profile.sum(axis=1)).ravel() > 0)


def _assemble(g: AchievementsGraph, now: pd.Timestamp, side: EventSide, series: SeriesMap, rows: _ParticipantRows,
              derived: tuple[L2Rows, np.ndarray, np.ndarray] | None = None, **shared: Any) -> RankingContext:
    """The context from its per-participant rows and the counts over participants; what is derived once."""
    # Participations per event: the graph keeps the count, and carries it over its fold-ins.
    per_event = np.asarray(g.registrations_per_event, dtype=np.float64)
    fl = side.format_level
    started = (g.events[Columns.StartDate] < now).to_numpy()
    format_level_pop = pd.Series(per_event[started], index=fl[started]).groupby(level=0).mean()
    event_series = np.asarray(series.index.get_indexer(side.series_key))
    seen = event_series >= 0
    profile = rows.profile
    profile_l2, top_competence, has_profile = derived if derived is not None else _profile_derived(profile)
    series_pop = shared["series_pop"]
    # Capacity use of the series' finished editions: a series whose editions fill up fills up early again, so
    # many of its registrations come before a cut (unseen until the event), and it may close when full.
    done = side.ended & ~np.isnan(side.capacity_raw) & seen
    at = event_series[done]
    n_s = series.n_series
    used = np.bincount(at, weights=per_event[done], minlength=n_s)
    offered = np.bincount(at, weights=side.capacity_raw[done], minlength=n_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        fill = np.where(offered > 0, used / offered, np.nan)
    event_fill = np.where(seen, fill[np.where(seen, event_series, 0)] if n_s else np.nan, np.nan).astype(np.float32)
    # The same stage of the series in earlier seasons (a series' stages share its key, levels tell them apart):
    # a series' total mixes its stages and grows with its number of editions.
    stage_key = np.where(seen, event_series, 0) * len(LEVELS) + np.clip(side.level.astype(np.int64), 0, len(LEVELS) - 1)
    finished = side.ended & seen
    editions = np.bincount(stage_key[finished], minlength=max(n_s, 1) * len(LEVELS))
    taken = np.bincount(stage_key[finished], weights=per_event[finished], minlength=max(n_s, 1) * len(LEVELS))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_edition = np.where(editions > 0, np.log1p(taken / np.maximum(editions, 1)), np.nan)
    edition_pop = np.where(seen, per_edition[stage_key], np.nan).astype(np.float32)
    region_code = shared["region_code"]
    active = rows.history_events > 0
    region_active = np.bincount(region_code[active & (region_code >= 0)],
                                minlength=max(len(shared["regions"]), 1)).astype(np.float64)
    return RankingContext(
        as_of=now, series=series, profile=profile, declared=rows.declared, history_events=rows.history_events,
        reached_level=rows.reached_level, level_taken=rows.level_taken, qualified=g.qualified(),
        participant_series=rows.participant_series, format_share=rows.format_share, online_share=rows.online_share,
        format_level_pop=format_level_pop,
        participant_team=rows.participant_team, mentor_competences=rows.mentor_competences,
        event_competence=g.event_competence(), events=side, profile_l2=profile_l2,
        top_competence=top_competence, has_profile=has_profile, event_series=event_series,
        event_series_popularity=_log1p(series_pop[np.where(seen, event_series, 0)]) * seen,
        event_format_popularity=_log1p(format_level_pop.reindex(side.format_level).fillna(0.0).to_numpy()),
        event_series_fill=event_fill, region_active=region_active, event_edition_popularity=edition_pop,
        level_group_size=np.bincount(_level_codes(rows.reached_level), minlength=len(LEVELS)).astype(np.float64),
        **shared,
    )


def _with_rows(m: sp.csr_matrix, positions: np.ndarray, rows: sp.csr_matrix, n_rows: int) -> sp.csr_matrix:
    """`m` grown to `n_rows` rows (empty ones appended) with its rows at `positions` (sorted) replaced by `rows`,
    every other row's entries kept as stored: one copy of the arrays, in slices between the replaced rows."""
    old_n = m.shape[0]
    lengths = np.zeros(n_rows, np.int64)
    lengths[:old_n] = np.diff(m.indptr)
    lengths[positions] = np.diff(rows.indptr)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices, data = [], []
    done = 0  # old rows copied up to here
    for i, row in enumerate(positions.tolist()):
        if row > done and done < old_n:
            a, b = m.indptr[done], m.indptr[min(row, old_n)]
            indices.append(m.indices[a:b])
            data.append(m.data[a:b])
        a, b = rows.indptr[i], rows.indptr[i + 1]
        indices.append(rows.indices[a:b])
        data.append(rows.data[a:b])
        done = row + 1
    if done < old_n:
        indices.append(m.indices[m.indptr[done]:])
        data.append(m.data[m.indptr[done]:])
    index_dtype = np.result_type(m.indices.dtype, rows.indices.dtype)
    return sp.csr_matrix((np.concatenate(data).astype(m.dtype, copy=False) if data else np.zeros(0, m.dtype),
                          np.concatenate(indices).astype(index_dtype, copy=False) if indices
                          else np.zeros(0, index_dtype), indptr), shape=(n_rows, m.shape[1]))


def _replaced(values: np.ndarray, positions: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    out = np.zeros((n_rows, *values.shape[1:]), dtype=values.dtype)
    out[: len(values)] = values
    out[positions] = rows
    return out


def patch_context(ctx: RankingContext, graph: AchievementsGraph, participants: np.ndarray) -> RankingContext:
    """The context of `graph`, a graph that differs from the context's by the rows of `participants` (positions
    in `graph`; participants added at the end count as changed): their rows recomputed, counts over participants
    moved by their change, every other array shared. Equal to `build_context(graph, ctx.as_of, ctx.events)`.

    Raises ValueError when the change needs a rebuild (another events table, a region no participant had).
    """
    now = ctx.as_of
    g = graph
    side = ctx.events
    if not g.known_before(now) or side.n_events != g.n_events:
        raise ValueError("the graph was cut or has other events: rebuild the context")
    old_n, n_p = len(ctx.history_events), g.n_participants
    positions = np.unique(np.concatenate([np.asarray(participants, np.int64), np.arange(old_n, n_p)]))
    if old_n > n_p or (len(positions) and positions[-1] >= n_p):
        raise ValueError("participants outside the graph: rebuild the context")
    rows = _participant_rows(g, now, ctx.series, positions)
    old = positions[positions < old_n]
    fresh = positions[positions >= old_n]
    p = g.participants.iloc[fresh]
    settlement, grade, region_code, school = ctx.settlement, ctx.grade, ctx.region_code, ctx.school
    schools = ctx.schools
    if len(fresh):
        settlement = np.concatenate([settlement, (
            p["settlement_type"].map(SETTLEMENT_CODES).astype("Float64").fillna(-1).to_numpy(np.float64)
            if "settlement_type" in p.columns else np.full(len(fresh), -1.0))])
        grade = np.concatenate([grade, g.grades_at(now, fresh)])
        names = p[Columns.Region].astype("string").fillna("").to_numpy(str) if Columns.Region in p.columns \
            else np.full(len(fresh), "")
        codes = ctx.regions.get_indexer(names)
        if (codes < 0).any():
            raise ValueError("a new participant's region changes the region codes: rebuild the context")
        region_code = np.concatenate([region_code, codes.astype(np.int64)])
        if Columns.Organization in p.columns:
            orgs = p[Columns.Organization].astype("string")
            unseen = orgs[orgs.notna() & ~orgs.isin(schools)].unique()
            schools = schools.append(pd.Index(unseen, dtype=schools.dtype)) if len(unseen) else schools
            school = np.concatenate([school, np.asarray(schools.get_indexer(orgs.fillna("\x00")), np.int64)])
        else:
            school = np.concatenate([school, np.full(len(fresh), -1, np.int64)])
    # Counts over participants move by the change of the changed participants' taken series.
    before = _binarize(ctx.participant_series[old])
    after = _binarize(rows.participant_series)
    delta = sp.csr_matrix(after - sp.vstack([before, sp.csr_matrix((len(fresh), after.shape[1]), dtype=np.float32)]))

    def moved(counts: sp.csr_matrix, codes: np.ndarray, n_groups: int) -> sp.csr_matrix:
        grown = counts if n_groups == counts.shape[0] else sp.vstack(
            [counts, sp.csr_matrix((n_groups - counts.shape[0], counts.shape[1]), dtype=counts.dtype)], format="csr")
        out = sp.csr_matrix(grown + _group_sums(codes, n_groups, delta))
        out.eliminate_zeros()
        return out

    series_pop = ctx.series_pop + np.asarray(delta.sum(axis=0)).ravel()
    # A changed participant may also change target level: their old rows leave the old group, the new rows join.
    n_levels = len(LEVELS)
    level_pop = sp.csr_matrix(ctx.series_level_pop - _group_sums(_level_codes(ctx.reached_level[old]), n_levels, before)
                              + _group_sums(_level_codes(rows.reached_level), n_levels, after))
    level_pop.eliminate_zeros()
    participant_series = _with_rows(ctx.participant_series, positions, rows.participant_series, n_p)
    participant_team = _with_rows(ctx.participant_team, positions, rows.participant_team, n_p)
    patched = _ParticipantRows(
        profile=_with_rows(ctx.profile, positions, rows.profile, n_p),
        declared=_with_rows(ctx.declared, positions, rows.declared, n_p),
        history_events=_replaced(ctx.history_events, positions, rows.history_events, n_p),
        reached_level=_replaced(ctx.reached_level, positions, rows.reached_level, n_p),
        level_taken=_replaced(ctx.level_taken, positions, rows.level_taken, n_p),
        format_share=_replaced(ctx.format_share, positions, rows.format_share, n_p),
        online_share=_replaced(ctx.online_share, positions, rows.online_share, n_p),
        participant_series=participant_series, participant_team=participant_team,
        mentor_competences=_with_rows(ctx.mentor_competences, positions, rows.mentor_competences, n_p),
    )
    l2, top, has = _profile_derived(rows.profile)
    old_l2 = ctx.profile_l2
    if not (l2.sorted_rows.all() and old_l2.sorted_rows.all()):
        raise ValueError("profile rows out of column order: rebuild the context")
    canonical = _with_rows(old_l2.canonical, positions, l2.canonical, n_p)
    derived = (L2Rows(np.ones(n_p, bool), canonical, canonical), _replaced(ctx.top_competence, positions, top, n_p),
               _replaced(ctx.has_profile, positions, has, n_p))
    return _assemble(
        g, now, side, ctx.series, patched, derived, settlement=settlement, grade=grade, region_code=region_code,
        regions=ctx.regions, school=school, schools=schools, series_pop=series_pop,
        series_region_pop=moved(ctx.series_region_pop, region_code[positions], ctx.series_region_pop.shape[0]),
        series_grade_pop=moved(ctx.series_grade_pop, _grade_codes(grade[positions]), 20),
        series_level_pop=level_pop,
        school_series=moved(ctx.school_series, school[positions], max(len(schools), 1)),
        team_participants=participant_team.T.tocsr(),
    )


def _latest_mentor_competences(g: AchievementsGraph, positions: np.ndarray | None = None,
                               their_rows: np.ndarray | None = None) -> sp.csr_matrix:
    """Competences of the mentor of each participant's latest mentored team (empty rows: no mentor); the rows of
    the participants at `positions` (sorted) only, when given (`their_rows`: their achievement rows, if known)."""
    from recommender.aif.parsing import parse_weighted

    n_c = len(g.competence_index)
    n = g.n_participants if positions is None else len(positions)
    empty = sp.csr_matrix((n, n_c), dtype=np.float32)
    if Columns.Mentor not in g.teams.columns or not len(g.mentors) or not len(g.teams):
        return empty
    a = g.achievements
    team_idx = a["team_idx"].to_numpy()
    owner = a["participant_idx"].to_numpy()
    if positions is None:
        pick = np.flatnonzero(team_idx >= 0)
    else:
        pick = their_rows if their_rows is not None else np.flatnonzero(np.isin(owner, positions))
        pick = pick[team_idx[pick] >= 0]
    mentor_of_team = g.teams[Columns.Mentor].iloc[team_idx[pick]].astype("string").to_numpy(dtype=object)
    has = pd.notna(mentor_of_team)
    pick = pick[has]
    if not len(pick):
        return empty
    rows_ = pd.DataFrame({"participant_idx": owner[pick], Columns.Date: a[Columns.Date].to_numpy()[pick],
                          "mentor": mentor_of_team[has].astype(str)})
    # A stable sort: among rows of one date the latest in the frame wins, in any block of participants.
    latest = rows_.sort_values(Columns.Date, kind="stable").groupby("participant_idx").tail(1)
    comp_pos = {c: i for i, c in enumerate(g.competence_index)}
    mentors = pd.Series(g.mentors["competences"].astype("string").to_numpy(dtype=object),
                        index=g.mentors[Columns.Mentor].astype(str).to_numpy())
    mentors = mentors[~mentors.index.duplicated(keep="last")]
    needed = pd.unique(latest["mentor"].to_numpy())
    texts = mentors.reindex(needed)
    mentor_rows: dict[str, list[tuple[int, float]]] = {
        mid: [(comp_pos[c], w) for c, w in parse_weighted(str(text)) if c in comp_pos] if isinstance(text, str) else []
        for mid, text in zip(needed, texts.to_numpy(), strict=True)
    }
    rows, cols, vals = [], [], []
    owners = latest["participant_idx"].to_numpy()
    if positions is not None:
        owners = np.searchsorted(positions, owners)
    for p, mid in zip(owners, latest["mentor"], strict=True):
        for c, w in mentor_rows.get(mid, []):
            rows.append(p)
            cols.append(c)
            vals.append(w)
    return sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, n_c))


def _taken(ctx: RankingContext, rows: np.ndarray, series: np.ndarray) -> np.ndarray:
    """Dense float32 [rows x series]: 1 where the participant took the series."""
    return (_take(ctx.participant_series, rows, series) > 0).astype(np.float32)


def _schoolmates_series(ctx: RankingContext, p: np.ndarray, series: np.ndarray) -> np.ndarray:
    """Schoolmates (same organization, oneself left out) who took each series: float32 [p x series]."""
    school = ctx.school[p]
    known = school >= 0
    out = _take(ctx.school_series, np.where(known, school, 0), series)
    out -= _taken(ctx, p, series)
    out[~known] = 0.0
    return out


def _row_entries(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in `rows`, column) of every stored entry of those rows of `m`."""
    starts = m.indptr[rows]
    counts = m.indptr[rows + 1] - starts
    total = int(counts.sum())
    pos = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
    return np.repeat(np.arange(len(rows)), counts), m.indices[pos]


def _teammates_series(ctx: RankingContext, p: np.ndarray, series: np.ndarray) -> np.ndarray:
    """Former teammates (anyone who shared a team, oneself left out) who took each series: float32 [p x series].

    Counted from the team memberships of the block's participants, so no participants x series product is
    kept; the counts are whole numbers, so any order of summing gives the same float32 values.
    """
    owner, team = _row_entries(ctx.participant_team, p)
    at, mate = _row_entries(ctx.team_participants, team)
    owner = owner[at]
    pairs = np.unique(owner * np.int64(ctx.team_participants.shape[1]) + mate)
    owner, mate = np.divmod(pairs, np.int64(ctx.team_participants.shape[1]))
    alone = mate != p[owner]
    owner, mate = owner[alone], mate[alone]
    which, took = _row_entries(ctx.participant_series, mate)
    n_s = ctx.participant_series.shape[1]
    if len(p) * n_s <= DENSE_GATHER_CELLS:  # a request: one count per series, no sparse matrix built
        dense = np.bincount(owner[which] * np.int64(n_s) + took, minlength=len(p) * n_s)
        return dense.reshape(len(p), n_s)[:, series].astype(np.float32)
    counts = sp.csr_matrix((np.ones(len(took), np.float32), (owner[which], took)), shape=(len(p), n_s))
    return _take(counts, np.arange(len(p)), series)


def pair_features(
    graph: AchievementsGraph, ctx: RankingContext, participants: np.ndarray, events: np.ndarray
) -> np.ndarray:
    """Dense features [participants x events x len(FEATURES)] as float32.

    Event columns are read from `ctx.events` (built once per events table and date) and participant rows
    are gathered from the context, so a request does array work on its candidates only. The values are
    bit for bit those of computing the block from the graph's tables (tests/features/test_ranking.py).
    """
    side = ctx.events
    if graph.n_events != side.n_events:
        raise ValueError(f"the ranking context holds {side.n_events} events, the graph {graph.n_events}")
    p = np.asarray(participants, dtype=np.int64)
    e = np.asarray(events, dtype=np.int64)
    n_p, n_e = len(p), len(e)
    out = np.zeros((n_p, n_e, len(FEATURES)), dtype=np.float32)

    def set_(name: str, value: np.ndarray | float) -> None:
        out[:, :, _COLUMN[name]] = value

    set_("interest_dot", _cross(ctx.profile, p, side.competence, side.competence_t, e))
    ec_n, ec_n_t = side.competence_l2_for(e)
    set_("interest_cos", _cross(ctx.profile_l2.for_block(p), p, ec_n, ec_n_t, e))
    set_("interest_top", side.competence_l1[e][:, ctx.top_competence[p]].T * ctx.has_profile[p][:, None])
    set_("declared_dot", _cross(ctx.declared, p, side.competence, side.competence_t, e))
    set_("history_events", _log1p(ctx.history_events[p])[:, None])

    level = side.level[e]
    reached = ctx.reached_level[p].astype(np.float32)
    target = np.minimum(reached + 1, len(LEVELS) - 1)
    gap = level[None, :] - target[:, None]
    set_("level_gap", gap)
    set_("level_gap_abs", np.abs(gap))
    set_("reached_level", reached[:, None])
    set_("level_taken_gap", level[None, :] - ctx.level_taken[p].astype(np.float32)[:, None])
    set_("event_level", level[None, :])

    parents = side.parent[e]
    staged = parents >= 0
    if staged.any():
        q = np.zeros((n_p, n_e), dtype=np.float32)
        q[:, staged] = _take(ctx.qualified, p, parents[staged])
        set_("qualified_stage", q)
        set_("stage_event", staged.astype(np.float32)[None, :])

    s = ctx.event_series[e]
    seen = s >= 0
    s_safe = np.where(seen, s, 0)
    mask_seen = seen.astype(np.float32)[None, :]
    set_("series_taken", _log1p(_take(ctx.participant_series, p, s_safe)) * mask_seen)
    fmt = side.format_code[e]
    set_("format_share", ctx.format_share[p][:, fmt])
    online = side.online[e]
    settlement = ctx.settlement[p].astype(np.float32)
    set_("online", online[None, :])
    set_("online_share", ctx.online_share[p].astype(np.float32)[:, None])
    set_("settlement", settlement[:, None])
    set_("offline_rural", (1 - online)[None, :] * (settlement == 2)[:, None])
    set_("offline_town", (1 - online)[None, :] * (settlement == 1)[:, None])
    set_("series_popularity", ctx.event_series_popularity[e][None, :])
    region = ctx.region_code[p]
    took_region = _take(ctx.series_region_pop, region, s_safe)
    set_("series_popularity_region", _log1p(took_region) * mask_seen)
    grade_codes = np.clip(np.nan_to_num(ctx.grade[p], nan=0.0), 0, 19).astype(np.int64)
    set_("series_popularity_grade", _log1p(_take(ctx.series_grade_pop, grade_codes, s_safe)) * mask_seen)
    set_("format_popularity", ctx.event_format_popularity[e][None, :])
    set_("schoolmates_series", _log1p(_schoolmates_series(ctx, p, s_safe)) * mask_seen)
    set_("teammates_series", _log1p(_teammates_series(ctx, p, s_safe)) * mask_seen)
    set_("mentor_fit", _cross(ctx.mentor_competences, p, side.competence, side.competence_t, e))
    set_("weeks_to_start", side.weeks_to_start[e][None, :])
    set_("registration_open_days", side.registration_open_days[e][None, :])
    set_("registration_left_days", side.registration_left_days[e][None, :])
    set_("registration_left_share", side.registration_left_share[e][None, :])
    grade = ctx.grade[p].astype(np.float32)
    set_("grade", grade[:, None])
    set_("grade_span", side.max_grade[e][None, :] - grade[:, None])
    set_("format", fmt.astype(np.float32)[None, :])
    set_("team_event", side.team_event[e][None, :])
    set_("capacity", side.capacity[e][None, :])
    set_("series_fill", ctx.event_series_fill[e][None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = took_region / np.maximum(ctx.region_active[region], 1.0)[:, None]
    set_("series_region_share", share.astype(np.float32) * mask_seen)
    set_("edition_popularity", ctx.event_edition_popularity[e][None, :])
    edition = ctx.event_edition_popularity[e]
    set_("edition_relative", (edition - ctx.event_format_popularity[e].astype(np.float32))[None, :])
    levels = _level_codes(ctx.reached_level[p])
    with np.errstate(invalid="ignore", divide="ignore"):
        level_share = _take(ctx.series_level_pop, levels, s_safe) / np.maximum(ctx.level_group_size[levels],
                                                                                1.0)[:, None]
    set_("series_level_share", level_share.astype(np.float32) * mask_seen)
    return out
