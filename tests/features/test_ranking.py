"""Pair features: the array path a request takes equals the computation from the graph's tables, bit for bit."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features import ranking
from features.ranking import (
    FEATURES,
    L2Rows,
    RankingContext,
    _log1p,
    _rows_normalized,
    build_context,
    event_side,
    pair_features,
    patch_context,
)
from recommender.columns import EVENT_FORMATS, LEVELS, Columns
from recommender.eligibility import eligibility_mask, open_events
from recommender.graph import AchievementsGraph, online_flags, to_timestamp
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from tests.tiny import tiny_tables
from training.reranker import RerankerConfig, RerankerRecommender
from training.tree_contributions import TreePaths

CUT = "2024-11-01"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> AchievementsGraph:
    out: Path = tmp_path_factory.mktemp("world")
    generate_world(SynthConfig(participants=800, seed=5), out)
    return AchievementsGraph.from_aif(out / "aif").as_of(CUT)


@pytest.fixture(scope="module")
def ctx(world: AchievementsGraph) -> RankingContext:
    return build_context(world, CUT)


@pytest.fixture(scope="module")
def reranker(world: AchievementsGraph) -> RerankerRecommender:
    config = RerankerConfig(cuts=3, n_estimators=40, groups_per_cut=600, min_child_samples=10)
    return RerankerRecommender(config).fit(world)



def reference_ties(graph: AchievementsGraph, ctx: RankingContext) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Participants x series: schoolmates and former teammates who took each series, for everyone at once from
    the graph's tables (as the context first stored them)."""
    taken = ctx.participant_series.tocsr(copy=True)
    taken.data[:] = 1.0
    p = graph.participants
    school_codes, schools = pd.factorize(p[Columns.Organization].astype("string"))
    known = school_codes >= 0
    school = sp.csr_matrix((np.ones(int(known.sum()), np.float32), (np.flatnonzero(known), school_codes[known])),
                           shape=(graph.n_participants, max(len(schools), 1)))
    schoolmates = sp.csr_matrix(school @ (school.T @ taken) - taken.multiply(school.sum(axis=1)))
    team = graph.participant_team()
    mates = (team @ team.T).tocsr()
    mates.setdiag(0)
    mates.eliminate_zeros()
    mates.data[:] = 1.0
    return schoolmates, sp.csr_matrix(mates @ taken)


def reference_pair_features(
    graph: AchievementsGraph, ctx: RankingContext, participants: np.ndarray, events: np.ndarray
) -> np.ndarray:
    """The pair features computed from the graph's tables for the block, as the product first did."""
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
    declared = _rows_normalized(graph.participant_interests()[participants])
    declared.sum_duplicates()
    set_("declared_dot", (declared @ ec.T).toarray())
    set_("history_events", _log1p(ctx.history_events[participants])[:, None])

    level = ev["level_rank"].to_numpy(np.float32)
    reached = ctx.reached_level[participants].astype(np.float32)
    target = np.minimum(reached + 1, len(LEVELS) - 1)
    gap = level[None, :] - target[:, None]
    set_("level_gap", gap)
    set_("level_gap_abs", np.abs(gap))
    set_("reached_level", reached[:, None])
    a = graph.achievements
    taken_level = graph.events["level_rank"].to_numpy(np.float64)[a["event_idx"].to_numpy()]
    mean_taken = pd.Series(taken_level).groupby(a["participant_idx"].to_numpy()).mean()
    mean_taken = mean_taken.reindex(participants).to_numpy(np.float64).astype(np.float32)
    set_("level_taken_gap", level[None, :] - mean_taken[:, None])
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
    was_online = pd.Series(online_flags(graph.events).astype(np.float64)[a["event_idx"].to_numpy()])
    online_share = was_online.groupby(a["participant_idx"].to_numpy()).mean().reindex(participants).fillna(0.0)
    set_("online_share", online_share.to_numpy(np.float64).astype(np.float32)[:, None])
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
    schoolmates, teammates = reference_ties(graph, ctx)
    set_("schoolmates_series", _log1p(schoolmates[participants][:, s_safe].toarray()) * mask_seen)
    set_("teammates_series", _log1p(teammates[participants][:, s_safe].toarray()) * mask_seen)
    set_("mentor_fit", (ctx.mentor_competences[participants] @ ec.T).toarray())
    weeks = (ev[Columns.StartDate] - ctx.as_of).dt.days.to_numpy(np.float32) / 7.0
    set_("weeks_to_start", weeks[None, :])
    start = ev[Columns.StartDate]
    closes = ev[Columns.RegistrationDeadline].fillna(start) if Columns.RegistrationDeadline in ev.columns else start
    opens = ev[Columns.RegistrationOpens] if Columns.RegistrationOpens in ev.columns \
        else pd.Series(pd.NaT, index=ev.index, dtype="datetime64[ns]")
    left = (closes - ctx.as_of).dt.days.to_numpy(np.float64)
    window = (closes - opens).dt.days.to_numpy(np.float64)
    set_("registration_open_days", (ctx.as_of - opens).dt.days.to_numpy(np.float64).astype(np.float32)[None, :])
    set_("registration_left_days", left.astype(np.float32)[None, :])
    set_("registration_left_share", np.clip(left / np.maximum(window, 1.0), 0.0, 1.0).astype(np.float32)[None, :])
    grade = ctx.grade[participants].astype(np.float32)
    set_("grade", grade[:, None])
    max_grade = ev["max_grade"].astype("Float64").astype("float64").to_numpy(np.float32) \
        if "max_grade" in ev.columns else np.full(n_e, np.nan, np.float32)
    set_("grade_span", max_grade[None, :] - grade[:, None])
    set_("format", fmt.astype(np.float32)[None, :])
    team_max = ev["team_max"].astype("Float64").fillna(1).astype("float64").to_numpy(np.float32) \
        if "team_max" in ev.columns else np.ones(n_e, np.float32)
    set_("team_event", (team_max > 1).astype(np.float32)[None, :])
    capacity = ev["capacity"].astype("Float64").astype("float64").to_numpy(np.float64, na_value=np.nan) \
        if "capacity" in ev.columns else np.full(n_e, np.nan)
    capacity = np.where(capacity > 0, capacity, np.nan)
    set_("capacity", np.log1p(capacity).astype(np.float32)[None, :])
    set_("series_fill", reference_series_fill(graph, ctx.as_of)[events][None, :])
    active = np.bincount(graph.achievements["participant_idx"].to_numpy(), minlength=graph.n_participants) > 0
    in_region = np.bincount(ctx.region_code[active], minlength=len(ctx.regions)).astype(np.float64)
    took = ctx.series_region_pop[region][:, s_safe].toarray()
    set_("series_region_share", (took / np.maximum(in_region[region], 1.0)[:, None]).astype(np.float32) * mask_seen)
    edition = reference_edition_popularity(graph, ctx.as_of)[events]
    set_("edition_popularity", edition[None, :])
    format_level = _log1p(ctx.format_level_pop.reindex(fl).fillna(0.0).to_numpy()).astype(np.float32)
    set_("edition_relative", (edition - format_level)[None, :])
    target = np.clip(ctx.reached_level + 1, 0, len(LEVELS) - 1)
    took = ctx.participant_series.tocsr(copy=True)
    took.data[:] = 1.0
    by_level = np.stack([np.asarray(took[target == t].sum(axis=0)).ravel() for t in range(len(LEVELS))])
    size = np.bincount(target, minlength=len(LEVELS)).astype(np.float64)
    mine = target[participants]
    share = by_level[mine][:, s_safe].astype(np.float32) / np.maximum(size[mine], 1.0)[:, None]
    set_("series_level_share", share.astype(np.float32) * mask_seen)
    return out


def reference_edition_popularity(graph: AchievementsGraph, as_of: pd.Timestamp) -> np.ndarray:
    """Per event: log(1 + mean participations) over the finished events of its series and level."""
    ev = graph.events
    end = ev[Columns.EndDate] if Columns.EndDate in ev.columns else ev[Columns.StartDate]
    finished = (end.fillna(ev[Columns.StartDate]) < as_of).to_numpy()
    counts = graph.achievements.groupby("event_idx").size().reindex(range(len(ev)), fill_value=0).to_numpy()
    key = pd.Series(graph.series_keys().to_numpy()) + "|" + ev["level"].astype(str).to_numpy()
    mean = pd.Series(counts[finished].astype(np.float64), index=key[finished].to_numpy()).groupby(level=0).mean()
    return np.log1p(mean.reindex(key.to_numpy()).to_numpy(np.float64)).astype(np.float32)


def reference_series_fill(graph: AchievementsGraph, as_of: pd.Timestamp) -> np.ndarray:
    """Per event: participations / capacity summed over the finished events of its series with a capacity."""
    ev = graph.events
    capacity = ev["capacity"].astype("Float64").astype("float64").to_numpy(np.float64, na_value=np.nan) \
        if "capacity" in ev.columns else np.full(len(ev), np.nan)
    end = ev[Columns.EndDate] if Columns.EndDate in ev.columns else ev[Columns.StartDate]
    finished = end.fillna(ev[Columns.StartDate]) < as_of
    counts = graph.achievements.groupby("event_idx").size().reindex(range(len(ev)), fill_value=0).to_numpy()
    frame = pd.DataFrame({"series": graph.series_keys().to_numpy(), "used": counts.astype(np.float64),
                          "offered": capacity})
    frame = frame[finished.to_numpy() & (capacity > 0)]
    sums = frame.groupby("series")[["used", "offered"]].sum()
    fill = (sums["used"] / sums["offered"]).reindex(graph.series_keys().to_numpy())
    return fill.to_numpy(np.float64).astype(np.float32)


def _sample(world: AchievementsGraph, n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(world.n_participants, n, replace=False))


def test_one_participant_equals_the_reference(world: AchievementsGraph, ctx: RankingContext) -> None:
    every_event = np.arange(world.n_events)
    open_now = open_events(world, CUT)
    assert len(open_now) > 10
    people = _sample(world, 40, seed=1)
    assert (ctx.history_events[people] > 0).any() and (ctx.history_events[people] == 0).any()
    for p in people:
        one = np.asarray([p])
        for events in (open_now, every_event):
            np.testing.assert_array_equal(pair_features(world, ctx, one, events),
                                          reference_pair_features(world, ctx, one, events))


def test_blocks_equal_the_reference(world: AchievementsGraph, ctx: RankingContext) -> None:
    events = np.arange(world.n_events)
    for block in (_sample(world, 5, seed=2), _sample(world, 40, seed=3), np.arange(world.n_participants)):
        np.testing.assert_array_equal(pair_features(world, ctx, block, events),
                                      reference_pair_features(world, ctx, block, events))


def test_every_branch_of_the_array_path_is_exercised(
    world: AchievementsGraph, ctx: RankingContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The world has what each feature reads, so the comparisons above are not comparing zeros.
    feats = pair_features(world, ctx, np.arange(world.n_participants), np.arange(world.n_events))
    for name in ("interest_cos", "qualified_stage", "series_taken", "schoolmates_series",
                 "teammates_series", "mentor_fit", "series_popularity_region"):
        assert np.nanmax(feats[:, :, FEATURES.index(name)]) > 0, name
    # Scipy's slicing and sparse products (the other side of the size thresholds) give the same bits too.
    monkeypatch.setattr(ranking, "DENSE_GATHER_CELLS", 0)
    monkeypatch.setattr(ranking, "FEW_PARTICIPANTS", 0)
    for p in _sample(world, 20, seed=4):
        one = np.asarray([p])
        np.testing.assert_array_equal(pair_features(world, ctx, one, np.arange(world.n_events)),
                                      reference_pair_features(world, ctx, one, np.arange(world.n_events)))


def test_l2_rows_are_those_of_any_block() -> None:
    rng = np.random.default_rng(0)
    n, cols = 60, 12
    rows = []
    for i in range(n):
        idx = rng.choice(cols, 1 + i % 7, replace=False)
        if i % 2:
            idx = np.sort(idx)  # odd rows sorted (scipy's canonical path), even rows mostly not
        rows.append(idx)
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    data = (rng.random(indptr[-1]) * 10.0 ** rng.integers(-3, 3, indptr[-1])).astype(np.float32)
    m = sp.csr_matrix((data, np.concatenate(rows), indptr), shape=(n, cols))
    l2 = L2Rows.of(m)
    assert l2.sorted_rows.any() and not l2.sorted_rows.all()
    blocks = [np.asarray([i]) for i in range(n)] + [np.arange(1, n, 2), np.arange(n), np.asarray([3, 5, 8])]
    differs = 0
    for block in blocks:
        expected = _rows_normalized(m[block], "l2")
        got = l2.for_block(block)[block]
        np.testing.assert_array_equal(got.indptr, expected.indptr)
        np.testing.assert_array_equal(got.indices, expected.indices)
        np.testing.assert_array_equal(got.data, expected.data)
    for row in np.flatnonzero(l2.sorted_rows):
        differs += int(not np.array_equal(np.sort(l2.canonical[row].data), np.sort(l2.general[row].data)))
    # Both paths are needed: some sorted rows are normalized to other bits in a mixed block.
    assert differs > 0


def test_event_side_is_per_date_and_needs_no_achievements() -> None:
    graph = AchievementsGraph.from_tables(tiny_tables())
    side = event_side(graph, "2025-01-10")
    pos = {e: i for i, e in enumerate(graph.event_index)}
    assert side.parent[pos["e_reg_final"]] == pos["e_school_24"] and side.parent[pos["e_online"]] == -1
    assert side.online[pos["e_region77"]] == 0 and side.online[pos["e_online"]] == 1
    assert side.weeks_to_start[pos["e_reg_final"]] == pytest.approx(10 / 7)
    assert side.format_level[pos["e_region77"]] == "hackathon/regional"
    assert np.isnan(side.max_grade[pos["e_full"]]) and side.max_grade[pos["e_online"]] == 11
    later = event_side(graph, "2025-01-17")
    assert later.weeks_to_start[pos["e_reg_final"]] == pytest.approx(side.weeks_to_start[pos["e_reg_final"]] - 1)
    empty = AchievementsGraph.from_tables({**tiny_tables(), "achievements": tiny_tables()["achievements"][:0]})
    np.testing.assert_array_equal(event_side(empty, "2025-01-10").competence_t, side.competence_t)
    with pytest.raises(ValueError, match="another date"):
        build_context(graph, "2025-01-11", side)


def test_registration_window_is_read_from_the_catalog_dates() -> None:
    tables = tiny_tables()
    events = tables["events"].copy()
    # Opening known for two events only: the others' window features stay unknown (nan), never a guess.
    events[Columns.RegistrationOpens] = pd.to_datetime([None, None, None, "2024-12-16", "2024-12-31", None, None,
                                                        None, None])
    graph = AchievementsGraph.from_tables({**tables, "events": events})
    pos = {e: i for i, e in enumerate(graph.event_index)}
    side = event_side(graph, "2025-01-10")
    final, course, hackathon = pos["e_reg_final"], pos["e_online"], pos["e_region77"]
    assert side.registration_open_days[final] == 25 and side.registration_left_days[final] == 5
    assert side.registration_left_share[final] == pytest.approx(5 / 30)
    assert side.registration_open_days[course] == 10 and side.registration_left_share[course] == pytest.approx(20 / 30)
    # No deadline: registration runs until the start.
    assert side.registration_left_days[hackathon] == 50
    assert np.isnan(side.registration_open_days[hackathon]) and np.isnan(side.registration_left_share[hackathon])
    later = event_side(graph, "2025-01-14")
    assert later.registration_left_days[final] == 1 and later.registration_open_days[final] == 29
    assert np.isnan(event_side(AchievementsGraph.from_tables(tables), "2025-01-10").registration_open_days).all()


def test_capacity_fill_region_share_and_edition_popularity_by_hand() -> None:
    tables = tiny_tables()
    d = pd.to_datetime
    # Last season's Moscow hackathon: capacity 4, ended before the date, taken by p1 and p2 (both of region 77).
    past = pd.DataFrame({"event_id": pd.array(["e_region77_24"], dtype="string"),
                         "title": pd.array(["Moscow hackathon 2024"], dtype="string"),
                         "format": pd.array(["hackathon"], dtype="string"),
                         "level": pd.array(["regional"], dtype="string"),
                         "competences": pd.array(["ai:1"], dtype="string"), "start_date": d(["2024-03-01"]),
                         "series_id": pd.array(["msk_hack"], dtype="string"),
                         "region_code": pd.array(["77"], dtype="string"),
                         "online": pd.array([False], dtype="boolean"), "capacity": pd.array([4], dtype="Int64")})
    events = pd.concat([tables["events"], past], ignore_index=True)
    extra = pd.DataFrame({"participant_id": pd.array(["p1", "p2"], dtype="string"),
                          "event_id": pd.array(["e_region77_24"] * 2, dtype="string"),
                          "role": pd.array(["participant"] * 2, dtype="string"),
                          "result": pd.array(["participant"] * 2, dtype="string"), "date": d(["2024-03-01"] * 2)})
    achievements = pd.concat([tables["achievements"], extra], ignore_index=True)
    graph = AchievementsGraph.from_tables({**tables, "events": events, "achievements": achievements})
    pos = {e: i for i, e in enumerate(graph.event_index)}
    people = {p: i for i, p in enumerate(graph.participant_index)}
    ctx = build_context(graph, "2025-01-10")
    f = pair_features(graph, ctx, np.arange(graph.n_participants), np.arange(graph.n_events))
    col = {name: FEATURES.index(name) for name in ("capacity", "series_fill", "series_region_share")}
    hack, camp, course = pos["e_region77"], pos["e_full"], pos["e_online"]
    assert f[0, hack, col["capacity"]] == np.float32(np.log1p(50.0))
    assert f[0, camp, col["capacity"]] == np.float32(np.log(2.0))
    assert np.isnan(f[0, course, col["capacity"]])  # unlimited (no capacity given)
    # 2 participations of 4 places; this season's edition (capacity 50) has not happened yet.
    assert f[0, hack, col["series_fill"]] == np.float32(0.5)
    # e_full has not started: its registration counts for nothing yet; no other camp edition.
    assert np.isnan(f[0, camp, col["series_fill"]]) and np.isnan(f[0, course, col["series_fill"]])
    p1, p3, p4 = people["p1"], people["p3"], people["p4"]
    # Region 77 has two participants with a history (p1, p2): both took the hackathon, p2 the course.
    assert f[p1, hack, col["series_region_share"]] == 1.0
    assert f[p1, course, col["series_region_share"]] == 0.5
    # p3 (region 16) is its region's only participant with a history and took the camp; p4 has no region.
    assert f[p3, camp, col["series_region_share"]] == 1.0 and f[p3, hack, col["series_region_share"]] == 0.0
    assert f[p4, course, col["series_region_share"]] == 0.0
    # A region of participants without history divides by one, never by zero.
    assert np.isfinite(f[..., col["series_region_share"]]).all()
    # The same stage in earlier seasons: 2 took last season's hackathon, 1 the regional stage of 2023/24.
    popularity = f[0, :, FEATURES.index("edition_popularity")]
    assert popularity[hack] == np.float32(np.log(3.0)) and popularity[pos["e_reg_final"]] == np.float32(np.log(2.0))
    # Both school stages have happened, 2 participants each; the course's only edition has not finished.
    assert popularity[pos["e_school_24"]] == np.float32(np.log(3.0)) and np.isnan(popularity[course])
    relative = f[0, :, FEATURES.index("edition_relative")]
    assert relative[hack] == 0.0 and np.isnan(relative[course])  # the only hackathon/regional that has started
    # Target levels: p1 reached regional (target national, alone there); p2, p3, p4 reached nothing (target school).
    level_share = f[..., FEATURES.index("series_level_share")]
    p2 = people["p2"]
    assert level_share[p1, hack] == 1.0 and level_share[p1, course] == 0.0
    assert level_share[p2, course] == np.float32(1 / 3) and level_share[p4, camp] == np.float32(1 / 3)
    assert level_share[p4, hack] == np.float32(1 / 3)  # p2 took last season's hackathon


def _reference_scores(
    model: RerankerRecommender, graph: AchievementsGraph, ctx: RankingContext, participant: int
) -> np.ndarray:
    """Scores of the open events as the pipeline first computed them: reference features, a frame, predict."""
    now = to_timestamp(CUT)
    events = open_events(graph, now)
    allowed = eligibility_mask(graph, now, np.asarray([participant]), events)[0]
    feats = reference_pair_features(graph, ctx, np.asarray([participant]), events)[0]
    scores = np.full(len(events), -np.inf)
    if allowed.any():
        scores[allowed] = model.model_.predict(pd.DataFrame(feats[allowed], columns=model.feature_names_))
    return scores


def test_request_scores_and_drivers_equal_the_reference_pipeline(
    world: AchievementsGraph, reranker: RerankerRecommender
) -> None:
    now = to_timestamp(CUT)
    events = open_events(world, now)
    ctx = build_context(world, now)
    scored = 0
    for p in _sample(world, 25, seed=5):
        one = np.asarray([p])
        allowed = eligibility_mask(world, now, one, events)
        scored += int(allowed.any())
        got = reranker._score(world, one, events, now, allowed)[0]
        np.testing.assert_array_equal(np.where(allowed[0], got, -np.inf), _reference_scores(reranker, world, ctx, p))
        feats = reference_pair_features(world, ctx, one, events)[0]
        contrib = TreePaths.of(reranker.model_.booster_).contributions(feats)  # numpy's walk, not LightGBM's
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :3]
        expected = [[reranker.feature_names_[j] for j in row if contrib[i, j] > 0] for i, row in enumerate(order)]
        assert reranker.score_drivers(world, int(p), events, now) == expected
    assert scored >= 10


def test_contributions_add_up_to_the_rerankers_scores(world: AchievementsGraph, reranker: RerankerRecommender
                                                     ) -> None:
    """On the fitted booster itself, for served rows and random ones (NaN, odd format codes)."""
    now = to_timestamp(CUT)
    served = pair_features(world, reranker._context(world, now), _sample(world, 30, seed=7),
                           open_events(world, now)).reshape(-1, len(FEATURES))
    rng = np.random.default_rng(8)
    noise = served[rng.integers(0, len(served), 3000)] * rng.choice([0.0, 0.5, 1.0, 3.0], (3000, len(FEATURES)))
    noise[rng.random(noise.shape) < 0.1] = np.nan
    noise[:, FEATURES.index("format")] = rng.choice([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 7.0, 40.0, np.nan], 3000)
    rows = np.vstack([served, noise.astype(np.float32)])
    paths = reranker.tree_paths()
    assert (paths.category >= 0).any(), "the booster splits on the categorical format"
    expected = reranker.model_.booster_.predict(rows, raw_score=True)
    np.testing.assert_array_equal(paths.raw_score(rows), expected)
    contrib = reranker.contributions(rows)
    np.testing.assert_array_equal(contrib, paths.contributions(rows))
    np.testing.assert_allclose(contrib.sum(axis=1) + paths.bias, expected, rtol=1e-9, atol=1e-12)


def test_event_side_outlives_a_fold_in(world: AchievementsGraph, reranker: RerankerRecommender) -> None:
    now = to_timestamp(CUT)
    events = open_events(world, now)
    people = _sample(world, 50, seed=6)
    may = eligibility_mask(world, now, people, events)
    p = int(people[np.flatnonzero(may.sum(axis=1) > 5)[0]])
    allowed = may[people == p][0]
    taken = world.event_index[events[np.flatnonzero(allowed)[0]]]
    side = reranker._event_side(world, now)
    folded = world.with_achievements(pd.DataFrame({
        "participant_id": pd.array([world.participant_index[p]], dtype="string"),
        "event_id": pd.array([taken], dtype="string"),
        "role": pd.array(["participant"], dtype="string"),
        "result": pd.array(["registered"], dtype="string"),
        "date": pd.to_datetime([now - pd.Timedelta(days=1)]),
    }))
    assert folded.events is world.events and len(folded.achievements) == len(world.achievements) + 1
    assert reranker._event_side(folded, now) is side
    recs = reranker.recommend([world.participant_index[p]], 5, as_of=now, graph=folded)
    assert taken not in set(recs["event_id"])
    # The new achievement counts: the folded graph is scored as a graph built with it would be.
    expected = _reference_scores(reranker, folded, build_context(folded, now), p)
    top = np.argsort(-expected, kind="stable")[: len(recs)]
    assert list(recs["event_id"]) == list(folded.event_index[events[top]])
    np.testing.assert_array_equal(recs["score"].to_numpy(), expected[top])


def assert_same_context(got: RankingContext, expected: RankingContext) -> None:
    """Every field equal: arrays and indexes exactly; sparse matrices entry for entry in stored order where the
    order sets the bits of a sum over a row, as the same matrix (sorted) for whole-number counts."""
    counts = {"series_region_pop", "series_grade_pop", "series_level_pop", "school_series", "team_participants"}
    for name in RankingContext.__dataclass_fields__:
        a, b = getattr(got, name), getattr(expected, name)
        if name == "profile_l2":
            assert_same_context_matrix(a.canonical, b.canonical, name, stored_order=True)
            assert_same_context_matrix(a.general, b.general, name, stored_order=True)
            np.testing.assert_array_equal(a.sorted_rows, b.sorted_rows)
        elif name == "events":
            assert a is b
        elif name == "series":
            assert a.index.equals(b.index) and np.array_equal(a.of_event, b.of_event)
        elif sp.issparse(a):
            assert_same_context_matrix(a, b, name, stored_order=name not in counts)
        elif isinstance(a, pd.Series):
            pd.testing.assert_series_equal(a, b, check_exact=True)
        elif isinstance(a, pd.Index):
            assert a.equals(b), name
        elif isinstance(a, np.ndarray):
            assert a.dtype == b.dtype, name
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert a == b, name


def assert_same_context_matrix(a: sp.csr_matrix, b: sp.csr_matrix, name: str, *, stored_order: bool) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype, name
    if not stored_order:
        a, b = a.copy(), b.copy()
        for m in (a, b):
            m.eliminate_zeros()
            m.sum_duplicates()
    np.testing.assert_array_equal(a.indptr, b.indptr, err_msg=name)
    np.testing.assert_array_equal(a.indices, b.indices, err_msg=name)
    np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def _achievement(pid: str, event: str, result: str, date: pd.Timestamp, team: str | None = None) -> pd.DataFrame:
    return pd.DataFrame({
        "participant_id": pd.array([pid], dtype="string"), "event_id": pd.array([event], dtype="string"),
        "role": pd.array(["participant"], dtype="string"), "result": pd.array([result], dtype="string"),
        "date": pd.to_datetime([date]), "team_id": pd.array([team], dtype="string"),
    })


def test_patched_context_equals_a_rebuild(world: AchievementsGraph, reranker: RerankerRecommender) -> None:
    now = to_timestamp(CUT)
    events = open_events(world, now)
    a = world.achievements
    people = world.participant_index
    in_team = a[a["team_idx"] >= 0].iloc[0]
    past = a[(a["team_idx"] < 0) & (a["result"] == "participant")].iloc[0]
    newcomer = pd.DataFrame({
        "participant_id": pd.array(["NEW0001"], dtype="string"),
        "region_code": pd.array([world.participants["region_code"].dropna().iloc[0]], dtype="string"),
        "organization_id": pd.array(["ORG-NEW"], dtype="string"), "settlement_type": pd.array(["rural"], "string"),
        "grade": pd.array([8], dtype="Int64"), "grade_date": pd.to_datetime(["2024-09-01"]),
    })
    batches = [
        # A registration, joining a team someone else is in (their teammates change too).
        _achievement(people[5], world.event_index[events[0]], "registered", now - pd.Timedelta(days=1),
                     str(in_team["team_id"])),
        # A result upgraded: the row is replaced (reached level, qualification, series counts).
        _achievement(str(past["participant_id"]), str(past["event_id"]), "winner", pd.Timestamp(past["date"])),
        # A participant new to the graph, of a new organization.
        _achievement("NEW0001", world.event_index[events[1]], "registered", now - pd.Timedelta(days=2)),
    ]
    side = reranker._event_side(world, now)
    ctx = reranker._context(world, now)
    graph = world
    for batch in batches:
        newcomers = newcomer if (batch["participant_id"] == "NEW0001").any() else None
        folded, added, replaced = graph.fold_achievements(batch, participants=newcomers)
        assert added + replaced == 1
        changed = folded.participant_positions(batch["participant_id"].astype(str).to_numpy())
        patched = patch_context(ctx, folded, changed)
        expected = build_context(folded, now, side)
        assert_same_context(patched, expected)
        # The model carries its context over a fold-in: the first request on the new graph finds it.
        reranker.graph_folded(graph, folded, changed)
        assert reranker._context(folded, now) is reranker._ctx_cache[2]
        assert_same_context(reranker._context(folded, now), expected)
        graph, ctx = folded, patched
    assert graph.n_participants == world.n_participants + 1
    assert graph.n_participants == len(ctx.history_events) and ctx.school[-1] == len(ctx.schools) - 1
    # Some field did change, and a request on the patched context scores as on a rebuilt one.
    base = build_context(world, now, side)
    n = world.n_participants
    assert (base.participant_team != ctx.participant_team[:n]).nnz > 0
    assert not np.array_equal(base.reached_level, ctx.reached_level[:n])
    one = np.asarray([graph.n_participants - 1, 5])
    np.testing.assert_array_equal(pair_features(graph, ctx, one, events),
                                  reference_pair_features(graph, build_context(graph, now, side), one, events))


def test_one_participants_rules_equal_those_of_a_block(world: AchievementsGraph) -> None:
    # A request reads the participant's rows directly (no sparse slicing): the same mask as for a block.
    now = to_timestamp(CUT)
    events = open_events(world, now)
    people = _sample(world, 200, seed=9)
    block = eligibility_mask(world, now, people, events)
    assert block.any() and not block.all()
    for row, p in enumerate(people):
        np.testing.assert_array_equal(eligibility_mask(world, now, np.asarray([p]), events)[0], block[row])
