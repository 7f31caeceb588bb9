"""GET /v1/participants/{id}/profile: the competence profile of the rating, scopes, errors, verified evidence only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.competence.profile import competence_profile
from recommender.columns import Columns
from serving.side_models import SideModels
from tests.serving.conftest import ApiClientFactory
from tests.serving.people_world import assert_no_identity, default_side, fitted_side, graph_of, state_over, world

PROFILE = "/v1/participants/{}/profile"


def _busiest(graph_achievements: pd.DataFrame, n: int = 1) -> list[str]:
    counts = graph_achievements[graph_achievements["result_rank"] >= 1][Columns.Participant].value_counts()
    return [str(p) for p in counts.index[:n]]


def test_profile_matches_the_rating_and_is_ordered(api_client: ApiClientFactory) -> None:
    side = default_side()
    client, headers = api_client(state_over(side))
    assert side.competence is not None
    for pid in _busiest(side.graph.achievements, 3):
        r = client.get(PROFILE.format(pid), headers=headers["frontend"])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["participant_id"] == pid and body["as_of"] == world().as_of.date().isoformat()
        assert body["model"] == "competence-profiles:competence_ratings@run-test"
        got = {c["competence_id"]: c for c in body["competences"]}
        want = competence_profile(side.competence.model, side.graph, pid, as_of=world().as_of)["competences"]
        assert len(got) == len(want) > 0
        for ref in want:
            c = got[ref[Columns.Competence]]
            for key in ("skill", "skill_sd", "percentile", "level", "evidence"):
                assert c[key] == ref[key], key
            assert c["interval_90"] == ref["interval_90"]
            assert c["interval_90"][0] <= c["skill"] <= c["interval_90"][1]
            assert 0.0 < c["percentile"] <= 100.0
            shown = [(a["event_id"], a["date"], a["result"], a["contribution"]) for a in c["top_achievements"]]
            assert shown == [(a[Columns.Event], a[Columns.Date], a[Columns.Result], a["contribution"])
                             for a in ref["top_achievements"]]
            assert c["history"] == ref["history"]
            assert all(a["contribution"] >= 0 and a["title"] for a in c["top_achievements"])
        skills = [c["skill"] for c in body["competences"]]
        assert skills == sorted(skills, reverse=True)
        assert_no_identity(body)


def test_grade_peers_and_newcomers(api_client: ApiClientFactory) -> None:
    side = default_side()
    client, headers = api_client(state_over(side))
    pid = _busiest(side.graph.achievements)[0]
    body = client.get(PROFILE.format(pid), headers=headers["analyst"]).json()  # analysts may read profiles too
    position = int(side.graph.participant_positions([pid])[0])
    grade = side.graph.grades_at(world().as_of)[position]
    assert body["grade"] == (None if np.isnan(grade) else round(grade))
    # Someone without a rated result has an honest empty profile, not an error.
    rated = set(side.graph.achievements.loc[side.graph.achievements["result_rank"] >= 1, Columns.Participant])
    newcomer = next(p for p in side.graph.participant_index if p not in rated)
    r = client.get(PROFILE.format(newcomer), headers=headers["frontend"])
    assert r.status_code == 200 and r.json()["competences"] == []


def test_unverified_results_are_never_shown_as_evidence(api_client: ApiClientFactory) -> None:
    w = world()
    pid = _busiest(graph_of(w.tables).achievements)[0]
    before = client_profile(api_client, default_side(), pid)
    assert any(c["top_achievements"] for c in before["competences"])
    tables = dict(w.tables)
    ach = tables["achievements"].copy()
    ach["verified"] = pd.array(np.where(ach[Columns.Participant].astype(str) == pid, False, True), dtype="boolean")
    tables["achievements"] = ach
    graph = graph_of(tables)
    after = client_profile(api_client, fitted_side(graph, w.as_of, team_model=False), pid)
    assert after["competences"] and all(c["top_achievements"] == [] for c in after["competences"])


def client_profile(api_client: ApiClientFactory, side: SideModels, pid: str) -> dict[str, Any]:
    client, headers = api_client(state_over(side))
    r = client.get(PROFILE.format(pid), headers=headers["frontend"])
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize(("who", "status", "code"), [(None, 401, "unauthorized"), ("partner", 403, "forbidden")])
def test_keys_and_scopes(api_client: ApiClientFactory, who: str | None, status: int, code: str) -> None:
    client, headers = api_client(state_over(default_side()))
    r = client.get(PROFILE.format(default_side().graph.participant_index[0]), headers=headers[who] if who else {})
    assert r.status_code == status and r.json()["error"]["code"] == code


def test_unknown_participant_and_missing_model(api_client: ApiClientFactory) -> None:
    client, headers = api_client(state_over(default_side()))
    r = client.get(PROFILE.format("ghost"), headers=headers["frontend"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "participant_not_found"
    client, headers = api_client(state_over(None))
    r = client.get(PROFILE.format(default_side().graph.participant_index[0]), headers=headers["frontend"])
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
