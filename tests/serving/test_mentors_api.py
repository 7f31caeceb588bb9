"""Mentors for a participant or team, and teammates at a team event: ranking, reach, capacity, reasons, errors."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from features.team_features import pair_feature_frame, team_feature_frame
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from serving.side_models import SideModels, load_side_models
from tests.serving.conftest import ApiClientFactory
from tests.serving.people_world import assert_no_identity, default_side, fitted_side, graph_of, state_over, world
from tests.tiny import tiny_tables
from training.mentors import rank_mentors
from training.teams import rank_teammates

P_MENTORS = "/v1/participants/{}/mentors"
T_MENTORS = "/v1/teams/{}/mentors"
TEAMMATES = "/v1/participants/{}/teammates"


def _active_participant(side: SideModels) -> str:
    a = side.graph.achievements
    return str(a[a["result_rank"] >= 1][Columns.Participant].value_counts().index[0])


def test_participant_mentors_are_reachable_free_and_ranked(api_client: ApiClientFactory) -> None:
    side = default_side()
    assert side.mentors is not None and side.free_places is not None
    client, headers = api_client(state_over(side))
    pid = _active_participant(side)
    r = client.get(P_MENTORS.format(pid), params={"k": 5}, headers=headers["frontend"])
    assert r.status_code == 200, r.text
    body = r.json()
    items = body["items"]
    assert body["participant_id"] == pid and body["team_id"] is None and 0 < len(items) <= 5
    assert [m["rank"] for m in items] == list(range(1, len(items) + 1))
    scores = [m["score"] for m in items]
    assert scores == sorted(scores, reverse=True)
    region = side.graph.participants[Columns.Region].iloc[int(side.graph.participant_positions([pid])[0])]
    for m in items:
        assert m["online"] or m["region_code"] == region  # a mentor who cannot reach them is never offered
        assert m["free_places"] > 0 and m["reasons"] and m["reasons"][0][0].isupper()
    want = rank_mentors(side.mentors.model, side.graph, participant_id=pid, k=5, capacity_left=side.free_places)
    assert [m["mentor_id"] for m in items] == list(want[Columns.Mentor])
    assert_no_identity(body)


def test_a_mentor_without_free_places_is_never_offered(api_client: ApiClientFactory) -> None:
    w = world()
    side = default_side()
    pid = _active_participant(side)
    client, headers = api_client(state_over(side))
    top = client.get(P_MENTORS.format(pid), headers=headers["frontend"]).json()["items"][0]["mentor_id"]
    tables = dict(w.tables)
    mentors = tables["mentors"].copy()
    mentors["capacity"] = pd.array(np.where(mentors[Columns.Mentor].astype(str) == top, 0, 3), dtype="Int64")
    tables["mentors"] = mentors
    full = fitted_side(graph_of(tables), w.as_of, team_model=False)
    client, headers = api_client(state_over(full))
    ids = [m["mentor_id"] for m in client.get(P_MENTORS.format(pid), params={"k": 50},
                                              headers=headers["frontend"]).json()["items"]]
    assert ids and top not in ids


def test_team_mentors_fit_the_teams_event(api_client: ApiClientFactory) -> None:
    side = default_side()
    client, headers = api_client(state_over(side))
    team = side.teams[side.teams["event_idx"] >= 0].iloc[0]
    r = client.get(T_MENTORS.format(team[Columns.Team]), params={"k": 3}, headers=headers["frontend"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["team_id"] == team[Columns.Team] and body["participant_id"] is None and 0 < len(body["items"]) <= 3
    needs = {side.graph.competence_index[c] for c in np.flatnonzero(side.teammates.need[int(team["event_idx"])] > 0)}
    best = body["items"][0]
    scores = [m["score"] for m in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # Ranked by expected benefit, effect x (base + fit): a mentor who misses what the event needs leads
    # only on a track record strong enough to outweigh the fit of those who know it.
    if not needs & set(best["competences"]):
        assert any("mentored" in reason.lower() for reason in best["reasons"])
    r = client.get(T_MENTORS.format("no-such-team"), headers=headers["frontend"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "team_not_found"


@pytest.mark.parametrize("path", [P_MENTORS, TEAMMATES])
def test_mentor_and_teammate_scopes(api_client: ApiClientFactory, path: str) -> None:
    side = default_side()
    client, headers = api_client(state_over(side))
    url = path.format(_active_participant(side))
    params = {"event_id": str(side.graph.event_index[0])}
    for scope in ("partner", "analyst"):
        r = client.get(url, params=params, headers=headers[scope])
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert client.get(url, params=params).status_code == 401
    r = client.get(P_MENTORS.format("ghost"), headers=headers["frontend"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "participant_not_found"
    r = client.get(P_MENTORS.format(_active_participant(side)), params={"k": 0}, headers=headers["frontend"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


@lru_cache(maxsize=1)
def teammate_world() -> tuple[SideModels, str, str, str, list[str]]:
    """The latest team event with a crowd registered: the requester, a former teammate of theirs and others."""
    w = world()
    base = graph_of(w.tables)
    a = base.achievements
    ev = base.events
    latest = ev[pd.to_numeric(ev["team_max"], errors="coerce") >= 2].sort_values(Columns.StartDate).iloc[-1]
    event = str(latest[Columns.Event])
    teamed = a[a["team_idx"] >= 0].groupby("team_idx")[Columns.Participant].agg(lambda s: list(dict.fromkeys(s)))
    pair = next(m for m in teamed if len(m) >= 2)
    me, partner = str(pair[0]), str(pair[1])
    rng = np.random.default_rng(0)
    others = [str(p) for p in rng.choice(base.participant_index.to_numpy(), size=12, replace=False)
              if p not in (me, partner)]
    pool = [me, partner, *others]
    rows = pd.DataFrame({
        Columns.Participant: pd.array(pool, dtype="string"),
        Columns.Event: pd.array([event] * len(pool), dtype="string"),
        Columns.Role: pd.array(["participant"] * len(pool), dtype="string"),
        Columns.Result: pd.array(["registered"] * len(pool), dtype="string"),
        Columns.Date: pd.to_datetime([latest[Columns.StartDate] - pd.Timedelta(days=3)] * len(pool)),
    })
    tables = dict(w.tables)
    tables["achievements"] = pd.concat([tables["achievements"], rows], ignore_index=True)
    return fitted_side(graph_of(tables), w.as_of), event, me, partner, pool


def test_teammates_come_from_the_registrants_with_reasons(api_client: ApiClientFactory) -> None:
    side, event, me, partner, pool = teammate_world()
    client, headers = api_client(state_over(side))
    r = client.get(TEAMMATES.format(me), params={"event_id": event, "k": 20}, headers=headers["frontend"])
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [t["participant_id"] for t in body["items"]]
    assert body["candidates"] == len(pool) - 1 and len(ids) == len(pool) - 1
    assert me not in ids and set(ids) == set(pool) - {me}
    scores = [t["score"] for t in body["items"]]
    assert scores == sorted(scores, reverse=True)
    former = next(t for t in body["items"] if t["participant_id"] == partner)
    assert "You were teammates before" in former["reasons"]
    assert all(0.0 <= t["predicted_success"] <= 1.0 for t in body["items"])
    assert body["model"] == "team-success:lightgbm@1"
    # The precomputed context ranks exactly as the library does from the graph alone.
    assert side.skills is not None
    want = rank_teammates(side.graph, me, event, side.skills, candidates=pool, k=20)
    assert ids == list(want[Columns.Participant])
    assert_no_identity(body)
    assert len(client.get(TEAMMATES.format(me), params={"event_id": event, "k": 3},
                          headers=headers["frontend"]).json()["items"]) == 3


def test_teammate_errors(api_client: ApiClientFactory) -> None:
    side, event, me, _, _ = teammate_world()
    client, headers = api_client(state_over(side))
    r = client.get(TEAMMATES.format(me), params={"event_id": "no-such-event"}, headers=headers["frontend"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "event_not_found"
    solo = str(side.graph.event_index[int(np.flatnonzero(~side.team_events)[0])])
    r = client.get(TEAMMATES.format(me), params={"event_id": solo}, headers=headers["frontend"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_a_team_event"
    r = client.get(TEAMMATES.format(me), headers=headers["frontend"])
    assert r.status_code == 422 and "event_id" in r.json()["error"]["message"]
    r = client.get(TEAMMATES.format("ghost"), params={"event_id": event}, headers=headers["frontend"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "participant_not_found"


def test_pair_features_equal_the_general_team_features() -> None:
    rng = np.random.default_rng(7)
    n, c = 9, 6
    skills = rng.normal(size=(n, c))
    need = rng.dirichlet(np.ones(c))
    school = np.array([3, 3, -1, 5, 3, -1, 5, 2, 3])
    ties = {(0, 4), (0, 7)}
    partners = np.arange(1, n)
    members = np.column_stack([np.zeros(len(partners), dtype=np.int64), partners]).ravel()
    general = team_feature_frame(skills[members], np.repeat(np.arange(len(partners)), 2),
                                 np.repeat(need[None, :], len(partners), 0), teamwork_col=2, school=school[members],
                                 tie_pairs=ties, member_ids=members)
    pairs = pair_feature_frame(skills[0], skills[partners], need, teamwork_col=2,
                               same_school=(school[partners] == school[0]) & (school[0] >= 0),
                               former_teammates=np.isin(partners, [4, 7]))
    pd.testing.assert_frame_equal(pairs, general, check_exact=False, rtol=1e-12, atol=1e-12)


def test_data_without_mentors_answers_empty_not_degraded(api_client: ApiClientFactory) -> None:
    graph = AchievementsGraph.from_tables(tiny_tables())
    side = load_side_models(graph, pd.Timestamp("2025-01-10"), fit_max_achievements=10**9, registry=False)
    assert side.mentors is None and "mentors" not in side.problems and "team-success" not in side.problems
    client, headers = api_client(state_over(side))
    r = client.get(P_MENTORS.format("p1"), headers=headers["frontend"])
    assert r.status_code == 200 and r.json()["items"] == []
    assert client.get(P_MENTORS.format("ghost"), headers=headers["frontend"]).status_code == 404
