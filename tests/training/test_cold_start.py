"""Cold start: people with no history ranked by declared interests, grade and region; new events by content."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features.event_content import declared_profile, with_declared
from features.ranking import (
    DECLARED_WEIGHT,
    FEATURES,
    INTEREST_HALF_LIFE_DAYS,
    RESULT_WEIGHT,
    build_context,
    pair_features,
)
from recommender.columns import Columns
from recommender.eligibility import EventFilters, eligibility_mask, open_events
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training.content import ContentConfig, ContentRecommender
from training.evaluation import cold_participants, history_lengths, side_by_side, temporal_split
from training.job import ranker
from training.popularity import PopularityRecommender
from training.reranker import RerankerConfig, RerankerRecommender

CUT = pd.Timestamp("2024-11-01")
HORIZON = 120
MODELS: dict[str, Callable[[], EventRecommender]] = {
    "content": lambda: ContentRecommender(),
    "pipeline": lambda: RerankerRecommender(
        RerankerConfig(cuts=6, n_estimators=80, groups_per_cut=2000, min_child_samples=20, seed=1)
    ),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> AchievementsGraph:
    out = tmp_path_factory.mktemp("world")
    generate_world(SynthConfig(participants=3000, seed=5), out)
    return AchievementsGraph.from_aif(out / "aif")


@pytest.fixture(scope="module")
def past(world: AchievementsGraph) -> AchievementsGraph:
    return world.as_of(CUT)


@pytest.fixture(scope="module")
def fitted(past: AchievementsGraph) -> dict[str, EventRecommender]:
    return {name: make().fit(past) for name, make in MODELS.items()}


def _dominant_competence(graph: AchievementsGraph, events: np.ndarray) -> np.ndarray:
    return np.asarray(graph.event_competence()[events].argmax(axis=1)).ravel()


def _declaring(graph: AchievementsGraph, texts: dict[int, str]) -> AchievementsGraph:
    """The graph with the given participants (positions) declaring these interests and nobody else anything."""
    people = graph.participants.copy()
    values = pd.array([pd.NA] * len(people), dtype="string")
    for position, text in texts.items():
        values[position] = text
    people[Columns.Interests] = values
    return replace(graph, participants=people, _cache={})


def _two_topics(graph: AchievementsGraph) -> tuple[int, int, np.ndarray]:
    """The two competences most open events are mainly about, and the open events."""
    events = open_events(graph, CUT, EventFilters(horizon_days=HORIZON))
    counts = np.bincount(_dominant_competence(graph, events), minlength=len(graph.competence_index))
    first, second = np.argsort(-counts, kind="stable")[:2]
    return int(first), int(second), events


def test_declared_interests_profile_the_cold_and_only_nudge_the_active(past: AchievementsGraph) -> None:
    declared = declared_profile(past)
    said = declared.getnnz(axis=1) > 0
    assert 0.3 < said.mean() < 0.5  # the world's sign-up form: about 40% fill it in
    np.testing.assert_allclose(np.asarray(declared.multiply(declared).sum(axis=1)).ravel()[said], 1.0, rtol=1e-5)
    k = len(past.competence_index)
    one_hot = np.eye(k, dtype=np.float32)
    history = sp.csr_matrix(np.stack([np.zeros(k, np.float32), one_hot[0]]))
    blended = with_declared(history, sp.csr_matrix(np.stack([one_hot[1], one_hot[1]])), 0.3).toarray()
    np.testing.assert_allclose(blended[0], one_hot[1], atol=1e-6)  # no history: the declaration alone
    assert blended[1, 0] > 3 * blended[1, 1] > 0  # a history: the declaration is a weak prior


def test_ranking_profile_is_the_declaration_for_the_cold_and_a_prior_for_the_active(past: AchievementsGraph) -> None:
    hist = np.bincount(past.achievements["participant_idx"], minlength=past.n_participants)
    cold, active = int(np.flatnonzero(hist == 0)[0]), int(np.argmax(hist))
    ids = list(past.competence_index)
    plain = build_context(_declaring(past, {}), CUT).profile
    graph = _declaring(past, {cold: "robotics:1;ai:1", active: "biology:1"})
    profile = build_context(graph, CUT).profile
    row = profile[cold].toarray().ravel()
    assert plain[cold].nnz == 0 and row[ids.index("robotics")] == row[ids.index("ai")] == pytest.approx(0.5)
    before, after = plain[active].toarray().ravel(), profile[active].toarray().ravel()
    # The history's weight: each achievement its recency times its result's weight (a winner's counts most).
    a = past.achievements[past.achievements["participant_idx"] == active]
    age = (CUT - a[Columns.Date]).dt.days.to_numpy(np.float64)
    weight = float(np.sum(0.5 ** (age / INTEREST_HALF_LIFE_DAYS)
                          * np.exp(RESULT_WEIGHT * (a["result_rank"].to_numpy(np.float64) - 2.0))))
    declared = np.zeros_like(before)
    declared[ids.index("biology")] = DECLARED_WEIGHT
    # What one said weighs as much as DECLARED_WEIGHT achievements beside what one did.
    np.testing.assert_allclose(after, (before * weight + declared) / (weight + DECLARED_WEIGHT), rtol=1e-4, atol=1e-6)


def test_declared_fit_reads_the_declaration_alone(past: AchievementsGraph) -> None:
    hist = np.bincount(past.achievements["participant_idx"], minlength=past.n_participants)
    cold, active = int(np.flatnonzero(hist == 0)[0]), int(np.argmax(hist))
    silent = int(next(p for p in np.flatnonzero(hist) if p != active))  # a history, and nothing declared
    ids = list(past.competence_index)
    graph = _declaring(past, {cold: "robotics:1;ai:3", active: "robotics:1;ai:3"})
    ctx = build_context(graph, CUT)
    events = np.arange(past.n_events)
    feats = pair_features(graph, ctx, np.asarray([cold, active, silent]), events)[:, :, FEATURES.index("declared_dot")]
    ec = past.event_competence().toarray()
    expected = 0.25 * ec[:, ids.index("robotics")] + 0.75 * ec[:, ids.index("ai")]
    # The same declaration gives the same fit whatever one has done; no declaration, no fit.
    np.testing.assert_allclose(feats[0], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(feats[1], feats[0])
    assert expected.max() > 0 and not feats[2].any()


def test_a_good_result_weighs_more_in_the_ranking_profile(past: AchievementsGraph) -> None:
    a = past.achievements
    # Two achievements of one participant in events about different competences: making the first a win
    # instead of a mere participation moves the profile toward that event's competences.
    counts = np.bincount(a["participant_idx"], minlength=past.n_participants)
    main = _dominant_competence(past, a["event_idx"].to_numpy())
    who = a["participant_idx"].to_numpy()
    person = next(int(p) for p in np.flatnonzero(counts == 2) if len(set(main[who == p])) == 2)
    rows = np.flatnonzero(who == person)
    top = int(main[rows[0]])

    def share(result: str) -> float:
        changed = a.copy()
        changed.loc[changed.index[rows[0]], Columns.Result] = result
        changed.loc[changed.index[rows[0]], "result_rank"] = {"participant": 1, "winner": 5}[result]
        graph = replace(_declaring(past, {}), achievements=changed, _cache={})
        return float(build_context(graph, CUT).profile[person].toarray().ravel()[top])

    assert share("winner") > share("participant")


def test_history_lengths_count_achievements_before_the_cut_and_the_cold_have_none(past: AchievementsGraph) -> None:
    counts = past.achievements.groupby(Columns.Participant).size()
    ids = pd.Series([*counts.index[:5].astype(str), "nobody-here"])
    assert history_lengths(past, ids).tolist() == [*counts.iloc[:5].tolist(), 0]
    everyone = history_lengths(past)
    assert len(everyone) == past.n_participants and everyone.sum() == len(past.achievements)
    assert set(cold_participants(past)) == set(past.participant_index[everyone == 0])
    assert 0 < len(cold_participants(past)) < past.n_participants


@pytest.mark.parametrize("name", list(MODELS))
def test_cold_participant_gets_declared_topic_above_others(
    name: str, past: AchievementsGraph, fitted: dict[str, EventRecommender]
) -> None:
    first, second, events = _two_topics(past)
    topic = _dominant_competence(past, events)
    cold = np.asarray(past.participant_positions(cold_participants(past).tolist()))
    grade = past.grades_at(CUT)[cold]
    # Grades every open event admits, so the two groups see the same catalog.
    cold = cold[(grade >= 8) & (grade <= 10)][:160]
    group_a, group_b = cold[::2], cold[1::2]
    ids = past.competence_index
    graph = _declaring(past, {**{int(p): f"{ids[first]}:1" for p in group_a},
                              **{int(p): f"{ids[second]}:1" for p in group_b}})
    model = fitted[name]

    def best_on_topic(people: np.ndarray, competence: int) -> float:
        """Mean share of a person's eligible events ranked above their best one mainly about `competence`
        (0: it comes first), over the people with such an event."""
        allowed = eligibility_mask(graph, CUT, people, events)
        scores = np.asarray(model._score(graph, people, events, CUT, allowed), dtype=np.float64)
        shares = []
        for row in range(len(people)):
            eligible = np.flatnonzero(allowed[row])
            on_topic = eligible[topic[eligible] == competence]
            if len(on_topic):
                shares.append(np.mean(scores[row, eligible] > scores[row, on_topic].max()))
        assert len(shares) >= 20
        return float(np.mean(shares))

    # Those who declared a topic find its events above where those who declared the other one do; by how much
    # depends on the events (a topic whose events are all national is held back by the level, as it should).
    own = [best_on_topic(group_a, first), best_on_topic(group_b, second)]
    other = [best_on_topic(group_b, first), best_on_topic(group_a, second)]
    assert own[0] < other[0] and own[1] < other[1], name
    assert np.mean(own) < 0.6 * np.mean(other) and np.mean(own) < 0.3, name


@pytest.mark.parametrize("name", list(MODELS))
def test_cold_recommendations_obey_every_rule(
    name: str, world: AchievementsGraph, past: AchievementsGraph, fitted: dict[str, EventRecommender]
) -> None:
    first, _, _ = _two_topics(past)
    cold = cold_participants(past)
    positions = past.participant_positions(cold.tolist())
    graph = _declaring(past, {int(p): f"{past.competence_index[first]}:1" for p in positions[:300]})
    filters = EventFilters(horizon_days=HORIZON)
    recs = fitted[name].recommend(cold[:300].tolist(), 10, as_of=CUT, filters=filters, graph=graph)
    assert recs[Columns.Participant].nunique() > 100
    events = open_events(graph, CUT, filters)
    ev = graph.events.set_index(graph.events[Columns.Event].astype(str))
    people = graph.participants.set_index(graph.participants[Columns.Participant].astype(str))
    grades = pd.Series(graph.grades_at(CUT), index=graph.participant_index)
    for pid, rows in recs.groupby(Columns.Participant):
        chosen = rows[Columns.Event].astype(str)
        allowed = eligibility_mask(graph, CUT, graph.participant_positions([pid]), events)[0]
        assert set(chosen) <= set(graph.event_index[events][allowed])
        # The rules again, written out independently of the eligibility module.
        mine = ev.loc[chosen]
        assert (mine[Columns.StartDate] > CUT).all()
        assert (mine[Columns.RegistrationDeadline].isna() | (mine[Columns.RegistrationDeadline] >= CUT)).all()
        assert (mine[Columns.RegistrationOpens].isna() | (mine[Columns.RegistrationOpens] <= CUT)).all()
        grade = grades[str(pid)]
        assert (mine["min_grade"].isna() | (mine["min_grade"] <= grade)).all()
        assert (mine["max_grade"].isna() | (mine["max_grade"] >= grade)).all()
        offline = mine["online"].fillna(False).eq(False) & mine[Columns.Region].notna()
        assert (mine.loc[offline, Columns.Region] == people.loc[str(pid), Columns.Region]).all()
        assert mine[Columns.ParentEvent].isna().all()  # no stage: nobody cold qualified for one


def _with_brand_new_event(graph: AchievementsGraph, template: int, competences: str) -> tuple[AchievementsGraph, int]:
    """The graph plus one open online event of a never-seen series (no participant yet), copied from `template`."""
    new = graph.events.iloc[[template]].copy()
    new[Columns.Event] = "E_NEW"
    new[Columns.Series] = "S_NEW"
    new["competences"] = competences
    for column in (Columns.ParentEvent, Columns.Region, "min_grade", "max_grade", "capacity"):
        new[column] = pd.NA
    new["online"] = True
    out = replace(graph, events=pd.concat([graph.events, new], ignore_index=True), _cache={})
    return out, out.n_events - 1


@pytest.mark.parametrize("name", list(MODELS))
def test_brand_new_event_reaches_the_right_people(
    name: str, past: AchievementsGraph, fitted: dict[str, EventRecommender]
) -> None:
    """A new series nobody has taken ranks higher for those into its competence, by history or by declaration."""
    first, second, events = _two_topics(past)
    ids = past.competence_index
    graph, new = _with_brand_new_event(past, int(events[0]), f"{ids[first]}:1")
    profile = past.participant_event() @ past.event_competence()
    active = np.asarray(profile.sum(axis=1)).ravel() > 0
    dominant = np.asarray(profile.argmax(axis=1)).ravel()
    fans = np.flatnonzero(active & (dominant == first))[:150]
    others = np.flatnonzero(active & (dominant != first))[:150]
    cold = np.asarray(graph.participant_positions(cold_participants(past).tolist()))[:200]
    graph = _declaring(graph, {**{int(p): f"{ids[first]}:1" for p in cold[::2]},
                               **{int(p): f"{ids[second]}:1" for p in cold[1::2]}})
    model = fitted[name]
    catalog = open_events(graph, CUT)
    column = int(np.flatnonzero(catalog == new)[0])

    def share_above(people: np.ndarray) -> float:
        """Mean share of open events scored above the new one (lower is better)."""
        allowed = np.ones((len(people), len(catalog)), dtype=bool)
        scores = np.asarray(model._score(graph, people, catalog, CUT, allowed), dtype=np.float64)
        assert np.isfinite(scores[:, column]).all()
        return float(np.mean((scores > scores[:, [column]]).sum(axis=1) / len(catalog)))

    assert share_above(fans) < share_above(others), name
    assert share_above(cold[::2]) < share_above(cold[1::2]), name


def test_side_by_side_reports_the_cold_slice(world: AchievementsGraph, fitted: dict[str, EventRecommender]) -> None:
    split = temporal_split(world, CUT, 90)
    participants = split.relevant[Columns.Participant].drop_duplicates().sort_values().reset_index(drop=True)
    rankers = {"popularity": ranker(PopularityRecommender().fit(split.train), split, 10),
               "content": ranker(ContentRecommender(ContentConfig()).fit(split.train), split, 10)}
    table = side_by_side(split, rankers, 10, participants)
    cold = set(cold_participants(split.train)) & set(participants)
    assert 0 < len(cold) < len(participants)
    assert (table["participants_cold"] == len(cold)).all()
    assert (table["participants_cold_declared"] <= table["participants_cold"]).all()
    assert table["ndcg@10_cold"].between(0, 1).all()
    # Declared interests help the cold who gave them: content beats popularity on that slice.
    assert table.loc["content", "ndcg@10_cold_declared"] > table.loc["popularity", "ndcg@10_cold_declared"]
