"""Competence rating internals with known answers: growth per format, result ladders, participation covariates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from features.competence.estimator import (
    CompetenceRatings,
    Participation,
    RatingConfig,
    _competence_loadings,
    _truncated_moments,
)
from features.competence.replay import replay_frame
from recommender.graph import AchievementsGraph

START = pd.Timestamp("2024-01-01")


def _s(values: Sequence[object]) -> pd.Series:
    return pd.Series(values, dtype="string")


def world_tables(events: Sequence[dict[str, object]], results: Sequence[dict[str, object]]) -> dict[str, pd.DataFrame]:
    """AIF tables from event dicts (event_id, format, week, competences) and result rows."""
    ev = pd.DataFrame(events)
    ach = pd.DataFrame(results)
    ach["date"] = [START + pd.Timedelta(weeks=int(w)) for w in ev.set_index("event_id").loc[ach["event_id"], "week"]]
    if "rank" not in ach.columns:
        ach["rank"] = pd.NA
    return {
        "participants": pd.DataFrame({"participant_id": _s(sorted(set(ach["participant_id"])))}),
        "events": pd.DataFrame({
            "event_id": _s(list(ev["event_id"])), "title": _s(list(ev["event_id"])), "format": _s(list(ev["format"])),
            "level": _s(["regional"] * len(ev)), "competences": _s(list(ev["competences"])),
            "start_date": pd.to_datetime([START + pd.Timedelta(weeks=int(w)) for w in ev["week"]]),
        }),
        "achievements": ach.assign(role="participant", rank=ach["rank"].astype("Int64"),
                                   participant_id=ach["participant_id"].astype("string"),
                                   event_id=ach["event_id"].astype("string"), result=ach["result"].astype("string")),
    }


def ranked(event_id: str, order: list[str]) -> list[dict[str, object]]:
    return [{"participant_id": pid, "event_id": event_id, "result": "participant", "rank": i + 1}
            for i, pid in enumerate(order)]


def growth_world(seed: int) -> AchievementsGraph:
    """Weekly contests that teach nothing; every third week a course that makes its half of the field better."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i:02d}" for i in range(80)]
    skill = rng.normal(0.0, 1.0, len(ids))
    events: list[dict[str, object]] = []
    results: list[dict[str, object]] = []
    for week in range(36):
        name = f"contest{week}"
        events.append({"event_id": name, "format": "contest", "week": week, "competences": "informatics:1"})
        perf = skill + rng.normal(0.0, 0.5, len(ids))
        results += ranked(name, [ids[i] for i in np.argsort(-perf)])
        if week % 3 == 1:
            name = f"course{week}"
            events.append({"event_id": name, "format": "course", "week": week, "competences": "informatics:1"})
            who = rng.permutation(len(ids))[: len(ids) // 2]
            perf = skill[who] + rng.normal(0.0, 0.5, len(who))
            results += ranked(name, [ids[i] for i in who[np.argsort(-perf)]])
            skill[who] += 0.5
    return AchievementsGraph.from_tables(world_tables(events, results))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_growth_is_estimated_per_format(seed: int) -> None:
    model = CompetenceRatings().fit(growth_world(seed))
    assert model.growth_["course"] > 0.1
    assert model.growth_["contest"] < 0.05
    # Without growth passes the rating stays at the configured growth.
    fixed = CompetenceRatings(RatingConfig(growth_passes=0)).fit(growth_world(seed))
    assert (fixed.growth_ == 0.0).all()


def test_estimated_growth_ranks_the_taught_better() -> None:
    graph = growth_world(3)
    a = graph.achievements
    courses = a[a["event_id"].str.startswith("course")].groupby("participant_id").size()
    taught = graph.participant_positions(list(courses.index))
    grown = CompetenceRatings().fit(graph)
    still = CompetenceRatings(RatingConfig(growth_passes=0)).fit(graph)
    main = graph.competence_index.get_loc("informatics")
    # The course-goers' last results were predicted too low without growth; the estimated growth moves
    # them up in step with the courses they took.
    gap = grown.skill(taught)[0][:, main] - still.skill(taught)[0][:, main]
    assert np.corrcoef(gap, courses.to_numpy())[0, 1] > 0.6


def test_a_result_ladder_bounds_the_performance() -> None:
    events = [{"event_id": "e", "format": "course", "week": 0, "competences": "informatics:1"}]
    ladder: list[dict[str, object]] = [{"participant_id": p, "event_id": "e", "result": r}
              for p, r in [("a", "completed"), ("b", "completed"), ("c", "participant"), ("d", "participant")]]
    ranks = ranked("e", ["a", "b", "c", "d"])
    model = CompetenceRatings().fit(AchievementsGraph.from_tables(world_tables(events, ladder)))
    exact = CompetenceRatings().fit(AchievementsGraph.from_tables(world_tables(events, ranks)))
    main = model.competences_.get_loc("informatics")
    mu, sd = model.skill(np.arange(4))
    assert mu[0, main] == pytest.approx(mu[1, main])
    assert mu[0, main] > mu[2, main]
    assert mu[2, main] == pytest.approx(mu[3, main])
    # Two steps of a ladder say less than a full ranking: less movement, more uncertainty left.
    mu_r, sd_r = exact.skill(np.arange(4))
    assert mu_r[0, main] > mu[0, main] and mu_r[3, main] < mu[3, main]
    assert np.all(sd[:, main] > sd_r[:, main])


def test_participation_covariates_count_choices_and_only_earlier_rows() -> None:
    events = [{"event_id": f"m{i}", "format": "olympiad", "week": i, "competences": "math:1"} for i in range(3)]
    events.append({"event_id": "ph", "format": "olympiad", "week": 3, "competences": "physics:1"})
    results = [{"participant_id": "a", "event_id": e["event_id"], "result": "participant"} for e in events]
    results.append({"participant_id": "b", "event_id": "ph", "result": "participant"})
    graph = AchievementsGraph.from_tables(world_tables(events, results))
    load = _competence_loadings(graph)
    part = Participation(graph, load, incremental=True)
    math, physics = graph.competence_index.get_loc("math"), graph.competence_index.get_loc("physics")
    a, b = graph.participant_positions(["a", "b"])
    day = int((START + pd.Timedelta(weeks=3)).to_datetime64().astype("datetime64[D]").astype(np.int64))
    part.advance(day)  # the physics olympiad (that day) is not counted yet
    x = part.features(np.array([a, a]), np.array([math, physics]), day)
    assert x[0, 2] == pytest.approx(np.log1p(3.0)) and x[1, 2] == 0.0
    assert x[0, 1] > x[1, 1]
    part.advance(np.inf)
    whole = Participation(graph, load, incremental=False)
    cells = (np.array([a, a, b]), np.array([math, physics, physics]))
    np.testing.assert_allclose(whole.features(*cells, day), part.features(*cells, day))
    np.testing.assert_allclose(part.frozen().features(*cells, day), part.features(*cells, day))
    x = whole.features(*cells, day)
    assert x[1, 2] == pytest.approx(np.log1p(1.0))
    # b chose only physics: a larger share of it than a, who mostly does math.
    assert x[2, 1] > x[1, 1]


def test_newcomer_means_learn_that_volume_goes_with_skill() -> None:
    """Participants who take more events are stronger: the newcomer mean's volume slope comes out positive."""
    rng = np.random.default_rng(7)
    ids = [f"p{i:03d}" for i in range(120)]
    volume = rng.integers(1, 7, len(ids))
    skill = 0.8 * np.log1p(volume) + rng.normal(0.0, 0.3, len(ids))
    events, results = [], []
    for week in range(6):
        name = f"c{week}"
        events.append({"event_id": name, "format": "contest", "week": week, "competences": "informatics:1"})
        here = np.flatnonzero(volume > week)
        perf = skill[here] + rng.normal(0.0, 0.4, len(here))
        results += ranked(name, [ids[i] for i in here[np.argsort(-perf)]])
    graph = AchievementsGraph.from_tables(world_tables(events, results))
    main = graph.competence_index.get_loc("informatics")
    with_cov = CompetenceRatings().fit(graph)
    without = CompetenceRatings(RatingConfig(covariates=False)).fit(graph)
    assert with_cov.state_.coef[main, 2] > 0.1
    assert np.all(without.state_.coef[:, 1:] == pytest.approx(0.0, abs=1e-6))
    # A prior that knows who does little ranks people closer to their true skill.
    pos = graph.participant_positions(ids)
    rho = [spearmanr(m.skill(pos)[0][:, main], skill).statistic for m in (with_cov, without)]
    assert rho[0] > rho[1] + 0.02


def test_truncated_moments_match_the_truncated_normal() -> None:
    from scipy.stats import truncnorm

    mean = np.array([0.0, 1.0, -0.5, 0.3])
    sd = np.array([1.0, 2.0, 0.5, 1.0])
    lower = np.array([-np.inf, 0.0, -1.0, 0.2])
    upper = np.array([0.5, np.inf, 0.0, 0.25])
    shift, factor = _truncated_moments(mean, sd, lower, upper)
    for i in range(len(mean)):
        exact = truncnorm((lower[i] - mean[i]) / sd[i], (upper[i] - mean[i]) / sd[i], loc=mean[i], scale=sd[i])
        assert shift[i] == pytest.approx((exact.mean() - mean[i]) / sd[i], abs=1e-9)
        assert factor[i] == pytest.approx(exact.var() / sd[i] ** 2, rel=1e-6)


def test_replay_covariates_never_see_later_choices() -> None:
    """Later registrations change what a participant chose, but never an earlier prediction."""
    events = [{"event_id": f"c{i}", "format": "contest", "week": i, "competences": "informatics:1"} for i in range(4)]
    results = [row for i in range(4) for row in ranked(f"c{i}", ["a", "b", "c"] if i % 2 else ["c", "b", "a"])]
    later_events = [*events, *[{"event_id": f"m{i}", "format": "olympiad", "week": 10 + i, "competences": "math:1"}
                               for i in range(3)]]
    registrations: list[dict[str, object]] = [
        {"participant_id": "a", "event_id": f"m{i}", "result": "registered"} for i in range(3)
    ]
    later = [*results, *registrations]
    one = replay_frame(AchievementsGraph.from_tables(world_tables(events, results)))
    two = replay_frame(AchievementsGraph.from_tables(world_tables(later_events, later)))
    pd.testing.assert_frame_equal(one, two.iloc[: len(one)])
    # A fit on all data does use them: a's volume and share of informatics changed.
    fit_one = CompetenceRatings().fit(AchievementsGraph.from_tables(world_tables(events, results)))
    fit_two = CompetenceRatings().fit(AchievementsGraph.from_tables(world_tables(later_events, later)))
    assert not np.allclose(fit_one.state_.mu[:, :-1], fit_two.state_.mu[:, :-1])
