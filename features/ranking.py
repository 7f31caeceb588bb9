"""Ranking features of (participant, event) pairs at a date, from the graph known before that date."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.series import SeriesMap, series_map
from recommender.columns import EVENT_FORMATS, LEVELS, Columns
from recommender.graph import QUALIFYING_RESULTS, AchievementsGraph, online_flags, to_timestamp

# Recent activity says more about current interests than old activity.
INTEREST_HALF_LIFE_DAYS = 365.0
# Weight of declared interests beside a history profile of weight 1 (see with_declared_interests).
DECLARED_PRIOR = 0.3
SETTLEMENT_CODES = {"city": 0, "town": 1, "rural": 2}

FEATURES = (
    "interest_dot",  # recency-weighted competence profile . event competences
    "interest_cos",
    "interest_top",  # share of the event's weight in the participant's strongest competence
    "history_events",  # events taken (log)
    "level_gap",  # event level - (highest qualifying level + 1)
    "level_gap_abs",
    "reached_level",
    "event_level",
    "qualified_stage",  # the event is the next stage of one the participant qualified at
    "stage_event",  # the event has a previous stage at all
    "series_taken",  # editions of this series taken before (log)
    "format_share",  # share of the participant's events in this format
    "online",
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
    "grade",
    "grade_span",  # event max grade - participant grade (nan when unknown)
    "format",
    "team_event",
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
    profile: sp.csr_matrix  # participants x competences, recency-weighted, L1-normalized rows
    history_events: np.ndarray
    reached_level: np.ndarray  # -1 when nothing reached
    qualified: sp.csr_matrix  # participants x events
    participant_series: sp.csr_matrix
    format_share: np.ndarray  # participants x formats
    settlement: np.ndarray
    grade: np.ndarray
    region_code: np.ndarray  # participant region position (-1 unknown)
    series_pop: np.ndarray
    series_region_pop: sp.csr_matrix  # regions x series
    series_grade_pop: sp.csr_matrix  # grades x series
    format_level_pop: pd.Series
    schoolmates_series: sp.csr_matrix  # participants x series
    teammates_series: sp.csr_matrix  # participants x series
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
    max_grade: np.ndarray  # float32, nan unknown
    team_event: np.ndarray  # float32
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
    return EventSide(
        as_of=now, competence=ec, competence_t=np.ascontiguousarray(ec.toarray().T),
        competence_l1=_rows_normalized(ec, "l1").toarray(), competence_l2=l2, competence_l2_t=l2_t,
        level=ev["level_rank"].to_numpy(np.float32),
        parent=parent.astype(np.int64),
        format_code=ev["format"].map({f: i for i, f in enumerate(EVENT_FORMATS)}).fillna(0).to_numpy(np.int64),
        online=online_flags(ev).astype(np.float32),
        weeks_to_start=(ev[Columns.StartDate] - now).dt.days.to_numpy(np.float32) / 7.0,
        max_grade=max_grade,
        team_event=(team_max > 1).astype(np.float32),
        series_key=graph.series_keys().to_numpy().astype(str),
        format_level=(ev["format"].astype(str) + "/" + ev["level"].astype(str)).to_numpy(),
    )


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
    sub = right_t[:, cols].astype(dtype, copy=False)
    for i, r in enumerate(rows):
        start, end = left.indptr[r], left.indptr[r + 1]
        acc = out[i]
        for k, v in zip(left.indices[start:end].tolist(), left.data[start:end], strict=True):
            acc += v * sub[k]
    return out



def with_declared_interests(profile: sp.csr_matrix, graph: AchievementsGraph, has_history: np.ndarray
                            ) -> sp.csr_matrix:
    """The interest profile (L1 rows) with declared interests (sign-up form) mixed in: alone for those with no
    history (cold start), at DECLARED_PRIOR beside a history's unit weight (what one does beats what one said).

    Mixed into the profile rather than given as a feature of its own: on the 20k world's cuts (September,
    November, February) a separate feature moved the re-ranker's NDCG@10 by -0.03..+0.02 from cut to cut,
    the mixed profile by 0..+0.04 for the cold who declared interests and never lowered the overall figure.
    """
    declared = _rows_normalized(graph.participant_interests())
    if not declared.nnz:
        return profile
    scale = np.where(has_history, DECLARED_PRIOR, 1.0).astype(np.float32)
    return _rows_normalized(profile + sp.diags(scale) @ declared)


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
    a = g.achievements
    n_p, n_e = g.n_participants, g.n_events
    p_idx = a["participant_idx"].to_numpy()
    e_idx = a["event_idx"].to_numpy()
    series = series_map(g)
    s_idx = series.of_event[e_idx]

    age_days = (now - a[Columns.Date]).dt.days.to_numpy(dtype=np.float64)
    recency = np.power(0.5, age_days / INTEREST_HALF_LIFE_DAYS).astype(np.float32)
    weighted_pe = sp.csr_matrix((recency, (p_idx, e_idx)), shape=(n_p, n_e))
    history = np.bincount(p_idx, minlength=n_p).astype(np.float64)
    profile = with_declared_interests(_rows_normalized(weighted_pe @ g.event_competence()), g, history > 0)

    level = g.events["level_rank"].to_numpy(dtype=np.int64)
    qualifying = a[Columns.Result].isin(QUALIFYING_RESULTS).to_numpy()
    reached = np.full(n_p, -1, dtype=np.int64)
    np.maximum.at(reached, p_idx[qualifying], level[e_idx[qualifying]])

    formats = g.events["format"].map({f: i for i, f in enumerate(EVENT_FORMATS)}).fillna(0).to_numpy(np.int64)
    fmt_counts = np.zeros((n_p, len(EVENT_FORMATS)))
    np.add.at(fmt_counts, (p_idx, formats[e_idx]), 1.0)
    fmt_share = fmt_counts / np.maximum(history, 1.0)[:, None]

    p = g.participants
    settlement = (
        p["settlement_type"].map(SETTLEMENT_CODES).astype("Float64").fillna(-1).to_numpy(np.float64)
        if "settlement_type" in p.columns else np.full(n_p, -1.0)
    )
    regions = p[Columns.Region].astype("string").fillna("") if Columns.Region in p.columns \
        else pd.Series([""] * n_p)
    region_codes, _ = pd.factorize(regions, sort=True)
    grade = g.grades_at(now)
    grade_codes = np.clip(np.nan_to_num(grade, nan=0.0), 0, 19).astype(np.int64)

    ps = sp.csr_matrix((np.ones(len(a), np.float32), (p_idx, s_idx)), shape=(n_p, series.n_series))
    ps.sum_duplicates()
    taken = _binarize(ps)
    series_pop = np.asarray(taken.sum(axis=0)).ravel()
    region_onehot = sp.csr_matrix(
        (np.ones(n_p, np.float32), (region_codes, np.arange(n_p))), shape=(int(region_codes.max()) + 1, n_p)
    )
    grade_onehot = sp.csr_matrix((np.ones(n_p, np.float32), (grade_codes, np.arange(n_p))), shape=(20, n_p))
    per_event = np.bincount(e_idx, minlength=n_e).astype(np.float64)
    fl = (g.events["format"].astype(str) + "/" + g.events["level"].astype(str)).to_numpy()
    started = (g.events[Columns.StartDate] < now).to_numpy()
    format_level_pop = pd.Series(per_event[started], index=fl[started]).groupby(level=0).mean()

    # Ties: schoolmates (same organization) and former teammates.
    if Columns.Organization in p.columns:
        school_codes, schools = pd.factorize(p[Columns.Organization].astype("string"))
        known = school_codes >= 0
        school = sp.csr_matrix(
            (np.ones(int(known.sum()), np.float32), (np.flatnonzero(known), school_codes[known])),
            shape=(n_p, max(len(schools), 1)),
        )
        schoolmates_series = school @ (school.T @ taken) - taken.multiply(school.sum(axis=1))
    else:
        schoolmates_series = sp.csr_matrix((n_p, series.n_series), dtype=np.float32)
    team = g.participant_team()
    mates = (team @ team.T).tocsr()
    mates.setdiag(0)
    mates.eliminate_zeros()
    teammates_series = _binarize(mates) @ taken

    mentor_comp = _latest_mentor_competences(g)
    event_series = np.asarray(series.index.get_indexer(side.series_key))
    seen = event_series >= 0
    # argmax sorts a matrix's indices in place: on a copy, so that the profile keeps its order of sums.
    top_competence = np.asarray(profile.copy().argmax(axis=1)).ravel()
    return RankingContext(
        as_of=now, series=series, profile=profile, history_events=history, reached_level=reached,
        qualified=g.qualified(), participant_series=ps, format_share=fmt_share, settlement=settlement,
        grade=grade, region_code=region_codes, series_pop=series_pop,
        series_region_pop=(region_onehot @ taken).tocsr(), series_grade_pop=(grade_onehot @ taken).tocsr(),
        format_level_pop=format_level_pop, schoolmates_series=sp.csr_matrix(schoolmates_series),
        teammates_series=sp.csr_matrix(teammates_series), mentor_competences=mentor_comp,
        event_competence=g.event_competence(),
        events=side, profile_l2=L2Rows.of(profile), top_competence=top_competence,
        has_profile=np.asarray(profile.sum(axis=1)).ravel() > 0, event_series=event_series,
        event_series_popularity=_log1p(series_pop[np.where(seen, event_series, 0)]) * seen,
        event_format_popularity=_log1p(format_level_pop.reindex(side.format_level).fillna(0.0).to_numpy()),
    )


def _latest_mentor_competences(g: AchievementsGraph) -> sp.csr_matrix:
    """Competences of the mentor of each participant's latest mentored team (empty rows: no mentor)."""
    from recommender.aif.parsing import parse_weighted

    n_c = len(g.competence_index)
    empty = sp.csr_matrix((g.n_participants, n_c), dtype=np.float32)
    if Columns.Mentor not in g.teams.columns or not len(g.mentors) or not len(g.teams):
        return empty
    a = g.achievements[g.achievements["team_idx"] >= 0]
    mentor_of_team = g.teams[Columns.Mentor].astype("string").to_numpy(dtype=object)[a["team_idx"].to_numpy()]
    has = pd.notna(mentor_of_team)
    a = a.loc[has, ["participant_idx", Columns.Date]].assign(mentor=mentor_of_team[has])
    if not len(a):
        return empty
    latest = a.sort_values(Columns.Date).groupby("participant_idx").tail(1)
    comp_pos = {c: i for i, c in enumerate(g.competence_index)}
    mentor_rows: dict[str, list[tuple[int, float]]] = {}
    for mid, text in zip(g.mentors[Columns.Mentor].astype(str), g.mentors["competences"].astype("string"),
                         strict=True):
        mentor_rows[mid] = [(comp_pos[c], w) for c, w in parse_weighted(str(text)) if c in comp_pos] \
            if isinstance(text, str) else []
    rows, cols, vals = [], [], []
    for p, mid in zip(latest["participant_idx"].to_numpy(), latest["mentor"].astype(str), strict=True):
        for c, w in mentor_rows.get(mid, []):
            rows.append(p)
            cols.append(c)
            vals.append(w)
    return sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(g.n_participants, n_c))


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
    set_("history_events", _log1p(ctx.history_events[p])[:, None])

    level = side.level[e]
    reached = ctx.reached_level[p].astype(np.float32)
    target = np.minimum(reached + 1, len(LEVELS) - 1)
    gap = level[None, :] - target[:, None]
    set_("level_gap", gap)
    set_("level_gap_abs", np.abs(gap))
    set_("reached_level", reached[:, None])
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
    set_("settlement", settlement[:, None])
    set_("offline_rural", (1 - online)[None, :] * (settlement == 2)[:, None])
    set_("offline_town", (1 - online)[None, :] * (settlement == 1)[:, None])
    set_("series_popularity", ctx.event_series_popularity[e][None, :])
    set_("series_popularity_region", _log1p(_take(ctx.series_region_pop, ctx.region_code[p], s_safe)) * mask_seen)
    grade_codes = np.clip(np.nan_to_num(ctx.grade[p], nan=0.0), 0, 19).astype(np.int64)
    set_("series_popularity_grade", _log1p(_take(ctx.series_grade_pop, grade_codes, s_safe)) * mask_seen)
    set_("format_popularity", ctx.event_format_popularity[e][None, :])
    set_("schoolmates_series", _log1p(_take(ctx.schoolmates_series, p, s_safe)) * mask_seen)
    set_("teammates_series", _log1p(_take(ctx.teammates_series, p, s_safe)) * mask_seen)
    set_("mentor_fit", _cross(ctx.mentor_competences, p, side.competence, side.competence_t, e))
    set_("weeks_to_start", side.weeks_to_start[e][None, :])
    grade = ctx.grade[p].astype(np.float32)
    set_("grade", grade[:, None])
    set_("grade_span", side.max_grade[e][None, :] - grade[:, None])
    set_("format", fmt.astype(np.float32)[None, :])
    set_("team_event", side.team_event[e][None, :])
    return out
