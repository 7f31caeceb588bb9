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


def build_context(graph: AchievementsGraph, as_of: pd.Timestamp | str) -> RankingContext:
    """Per-participant and per-event state from the graph's rows dated before `as_of`."""
    now = to_timestamp(as_of)
    g = graph if graph.known_before(now) else graph.as_of(now)
    a = g.achievements
    n_p, n_e = g.n_participants, g.n_events
    p_idx = a["participant_idx"].to_numpy()
    e_idx = a["event_idx"].to_numpy()
    series = series_map(g)
    s_idx = series.of_event[e_idx]

    age_days = (now - a[Columns.Date]).dt.days.to_numpy(dtype=np.float64)
    recency = np.power(0.5, age_days / INTEREST_HALF_LIFE_DAYS).astype(np.float32)
    weighted_pe = sp.csr_matrix((recency, (p_idx, e_idx)), shape=(n_p, n_e))
    profile = _rows_normalized(weighted_pe @ g.event_competence())
    history = np.bincount(p_idx, minlength=n_p).astype(np.float64)

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
    return RankingContext(
        as_of=now, series=series, profile=profile, history_events=history, reached_level=reached,
        qualified=g.qualified(), participant_series=ps, format_share=fmt_share, settlement=settlement,
        grade=grade, region_code=region_codes, series_pop=series_pop,
        series_region_pop=(region_onehot @ taken).tocsr(), series_grade_pop=(grade_onehot @ taken).tocsr(),
        format_level_pop=format_level_pop, schoolmates_series=sp.csr_matrix(schoolmates_series),
        teammates_series=sp.csr_matrix(teammates_series), mentor_competences=mentor_comp,
        event_competence=g.event_competence(),
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
    """Dense features [participants x events x len(FEATURES)] as float32."""
    n_p, n_e = len(participants), len(events)
    ev = graph.events.iloc[events]
    ec = ctx.event_competence[events]
    prof = ctx.profile[participants]
    out = np.zeros((n_p, n_e, len(FEATURES)), dtype=np.float32)
    put = {name: i for i, name in enumerate(FEATURES)}

    def set_(name: str, value: np.ndarray | float) -> None:
        out[:, :, put[name]] = value

    dot = (prof @ ec.T).toarray()
    set_("interest_dot", dot)
    ec_n = _rows_normalized(ec, "l2")
    prof_n = _rows_normalized(prof, "l2")
    set_("interest_cos", (prof_n @ ec_n.T).toarray())
    top = np.asarray(prof.argmax(axis=1)).ravel()
    has_profile = np.asarray(prof.sum(axis=1)).ravel() > 0
    top_share = _rows_normalized(ec, "l1")[:, top].toarray().T * has_profile[:, None]
    set_("interest_top", top_share)
    set_("history_events", _log1p(ctx.history_events[participants])[:, None])

    level = ev["level_rank"].to_numpy(np.float32)
    reached = ctx.reached_level[participants].astype(np.float32)
    target = np.minimum(reached + 1, len(LEVELS) - 1)
    gap = level[None, :] - target[:, None]
    set_("level_gap", gap)
    set_("level_gap_abs", np.abs(gap))
    set_("reached_level", reached[:, None])
    set_("event_level", level[None, :])

    if Columns.ParentEvent in ev.columns:
        parents = graph.event_index.get_indexer(ev[Columns.ParentEvent].astype("string").fillna(""))
        staged = parents >= 0
        q = np.zeros((n_p, n_e), dtype=np.float32)
        if staged.any():
            q[:, staged] = ctx.qualified[participants][:, parents[staged]].toarray()
        set_("qualified_stage", q)
        set_("stage_event", staged.astype(np.float32)[None, :])

    s = ctx.series.index.get_indexer(graph.series_keys().to_numpy()[events].astype(str))
    seen = s >= 0
    s_safe = np.where(seen, s, 0)
    mask_seen = seen.astype(np.float32)[None, :]
    set_("series_taken", _log1p(ctx.participant_series[participants][:, s_safe].toarray()) * mask_seen)
    fmt = ev["format"].map({f: i for i, f in enumerate(EVENT_FORMATS)}).fillna(0).to_numpy(np.int64)
    set_("format_share", ctx.format_share[participants][:, fmt])
    online = online_flags(ev).astype(np.float32)
    settlement = ctx.settlement[participants].astype(np.float32)
    set_("online", online[None, :])
    set_("settlement", settlement[:, None])
    set_("offline_rural", (1 - online)[None, :] * (settlement == 2)[:, None])
    set_("offline_town", (1 - online)[None, :] * (settlement == 1)[:, None])
    set_("series_popularity", (_log1p(ctx.series_pop[s_safe]) * seen)[None, :])
    region = ctx.region_code[participants]
    set_("series_popularity_region", _log1p(ctx.series_region_pop[region][:, s_safe].toarray()) * mask_seen)
    grade_codes = np.clip(np.nan_to_num(ctx.grade[participants], nan=0.0), 0, 19).astype(np.int64)
    set_("series_popularity_grade", _log1p(ctx.series_grade_pop[grade_codes][:, s_safe].toarray()) * mask_seen)
    fl = (ev["format"].astype(str) + "/" + ev["level"].astype(str)).to_numpy()
    set_("format_popularity", _log1p(ctx.format_level_pop.reindex(fl).fillna(0.0).to_numpy())[None, :])
    set_("schoolmates_series", _log1p(ctx.schoolmates_series[participants][:, s_safe].toarray()) * mask_seen)
    set_("teammates_series", _log1p(ctx.teammates_series[participants][:, s_safe].toarray()) * mask_seen)
    set_("mentor_fit", (ctx.mentor_competences[participants] @ ec.T).toarray())
    weeks = (ev[Columns.StartDate] - ctx.as_of).dt.days.to_numpy(np.float32) / 7.0
    set_("weeks_to_start", weeks[None, :])
    grade = ctx.grade[participants].astype(np.float32)
    set_("grade", grade[:, None])
    max_grade = ev["max_grade"].astype("Float64").astype("float64").to_numpy(np.float32) \
        if "max_grade" in ev.columns else np.full(n_e, np.nan, np.float32)
    set_("grade_span", max_grade[None, :] - grade[:, None])
    set_("format", fmt.astype(np.float32)[None, :])
    team_max = ev["team_max"].astype("Float64").fillna(1).astype("float64").to_numpy(np.float32) \
        if "team_max" in ev.columns else np.ones(n_e, np.float32)
    set_("team_event", (team_max > 1).astype(np.float32)[None, :])
    return out
