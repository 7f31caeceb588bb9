"""POST /v1/programs/{id}/scores: consent respected, nobody dropped, every partner access audited, no personal data."""

from __future__ import annotations

import json

import numpy as np
import sqlalchemy as sa
from fastapi.testclient import TestClient

from recommender.store.tables import PK, audit_log
from serving.schemas_people import MAX_SCORED_PARTICIPANTS
from serving.side_models import SideModels
from serving.state import ServingState
from tests.serving.conftest import ApiClientFactory, Headers
from tests.serving.people_world import assert_no_identity, default_side, fitted_side, graph_of, state_over, world
from training.admissions import Program, consented, score_program

SCORES = "/v1/programs/{}/scores"


def _program() -> str:
    return str(default_side().graph.programs["program_id"].iloc[0])


def _audit_rows(state: ServingState) -> list[dict[str, object]]:
    assert state.store is not None
    with state.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(audit_log).order_by(audit_log.c[PK]))]


def _served(api_client: ApiClientFactory) -> tuple[TestClient, Headers, ServingState]:
    state = state_over(default_side())
    client, headers = api_client(state)
    return client, headers, state


def test_consenting_scored_others_listed_none_dropped(api_client: ApiClientFactory) -> None:
    client, headers, _ = _served(api_client)
    program = _program()
    side = default_side()
    ids = [str(p) for p in side.graph.participant_index[:40]]
    ok = consented(side.graph)[:40]
    assert ok.any() and (~ok).any()
    asked = [*ids, "ghost-1", ids[0], "ghost-2"]  # unknown ids and a duplicate
    r = client.post(SCORES.format(program), json={"participant_ids": asked}, headers=headers["partner"])
    assert r.status_code == 200, r.text
    body = r.json()
    scored = [s["participant_id"] for s in body["scored"]]
    assert scored == [p for p, c in zip(ids, ok, strict=True) if c]  # in the order asked
    assert body["not_consented"] == [p for p, c in zip(ids, ok, strict=True) if not c]
    assert body["unknown"] == ["ghost-1", "ghost-2"]
    assert sorted(scored + body["not_consented"] + body["unknown"]) == sorted(set(asked))
    assert side.competence is not None
    want = score_program(side.competence.model, side.graph, Program.from_graph(side.graph, program), scored,
                         as_of=side.as_of).set_index("participant_id")
    for s in body["scored"]:
        ref = want.loc[s["participant_id"]]
        assert s["score"] == float(ref["score"]) and s["score_low"] <= s["score"] <= s["score_high"]
        assert s["percentile"] == round(float(ref["percentile"]), 2) and 0.0 <= s["percentile"] <= 100.0
        assert set(s["requirements_met"]) | set(s["requirements_missing"]) == {
            c for c, _ in Program.from_graph(side.graph, program).requirements}
        assert s["all_requirements_met"] == (not s["requirements_missing"])
    assert body["model"] == "competence-profiles:competence_ratings@run-test"
    assert_no_identity(body)


def test_every_partner_request_is_audited_before_the_answer(api_client: ApiClientFactory) -> None:
    client, headers, state = _served(api_client)
    program = _program()
    ids = [str(p) for p in default_side().graph.participant_index[:3]]
    assert client.post(SCORES.format(program), json={"participant_ids": ids}, headers=headers["partner"]).is_success
    r = client.post(SCORES.format("no-such-program"), json={"participant_ids": ids[:1]}, headers=headers["partner"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "program_not_found"
    rows = _audit_rows(state)
    assert [row["resource"] for row in rows] == [f"/v1/programs/{program}/scores",
                                                 "/v1/programs/no-such-program/scores"]
    assert json.loads(str(rows[0]["participant_ids"])) == ids and rows[0]["scopes"] == "partner"
    assert json.loads(str(rows[1]["participant_ids"])) == ids[:1]
    # No audit row, no data: an access that cannot be recorded is refused.
    assert state.store is not None
    state.store.engine.dispose()
    with state.store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE audit_log"))
    r = client.post(SCORES.format(program), json={"participant_ids": ids}, headers=headers["partner"])
    assert r.status_code == 503 and "scored" not in r.text


def test_scopes_and_bodies(api_client: ApiClientFactory) -> None:
    client, headers, state = _served(api_client)
    program = _program()
    body = {"participant_ids": [str(default_side().graph.participant_index[0])]}
    for scope in ("frontend", "analyst"):
        r = client.post(SCORES.format(program), json=body, headers=headers[scope])
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert client.post(SCORES.format(program), json=body).status_code == 401
    assert client.post(SCORES.format(program), json=body, headers=headers["admin"]).status_code == 200
    bodies: list[dict[str, list[str]]] = [
        {"participant_ids": []}, {"participant_ids": ["x"] * (MAX_SCORED_PARTICIPANTS + 1)}, {"ids": ["x"]}]
    for bad in bodies:
        r = client.post(SCORES.format(program), json=bad, headers=headers["partner"])
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    # Only the request that reached the data is audited (admin's); refused and malformed ones read nothing.
    assert [row["key_id"] for row in _audit_rows(state)] == [_audit_rows(state)[0]["key_id"]]


def test_no_competence_model_is_503_after_the_audit(api_client: ApiClientFactory) -> None:
    state = state_over(None)
    client, headers = api_client(state)
    program = _program()
    r = client.post(SCORES.format(program), json={"participant_ids": ["P0000001"]}, headers=headers["partner"])
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
    assert len(_audit_rows(state)) == 1


def _reference(side: SideModels, program: str, ids: list[str]) -> dict[str, tuple[float, float]]:
    """score_program (everyone scored, then ranked) for the consenting ones: id -> (score, percentile)."""
    assert side.competence is not None
    frame = score_program(side.competence.model, side.graph, Program.from_graph(side.graph, program), ids,
                          as_of=side.as_of)
    frame = frame[frame["status"] == "scored"]
    return {str(r.participant_id): (float(r.score), round(float(r.percentile), 2)) for r in frame.itertuples()}


def _answered(client: TestClient, headers: Headers, program: str, ids: list[str]) -> dict[str, tuple[float, float]]:
    r = client.post(SCORES.format(program), json={"participant_ids": ids}, headers=headers["partner"])
    assert r.status_code == 200, r.text
    return {s["participant_id"]: (s["score"], s["percentile"]) for s in r.json()["scored"]}


def test_every_program_answers_as_the_reference_from_a_cohort_built_once(api_client: ApiClientFactory) -> None:
    side = fitted_side(graph_of(world().tables), world().as_of, team_model=False)  # its own, empty, cohort cache
    client, headers = api_client(state_over(side))
    assert side.scoring is not None
    ids = [str(p) for p in side.graph.participant_index[::7]]
    programs = side.graph.programs["program_id"].astype(str).tolist()[:5]
    for program in programs:
        want = _reference(side, program, ids)
        assert len(want) > 20 and len({pct for _, pct in want.values()}) > 10
        assert _answered(client, headers, program, ids) == want
        built = side.scoring._cohorts[Program.from_graph(side.graph, program).requirements]
        # Later requests (of any size) read the same cohort and still answer as the reference.
        assert _answered(client, headers, program, ids[:1]) == {k: v for k, v in want.items() if k == ids[0]}
        assert side.scoring._cohorts[Program.from_graph(side.graph, program).requirements] is built
    assert len(side.scoring._cohorts) == len({Program.from_graph(side.graph, p).requirements for p in programs})


def test_side_models_over_a_new_graph_rank_in_their_own_cohort(api_client: ApiClientFactory) -> None:
    """A graph (or model) replaced comes with new side models, whose cohorts are built afresh: nothing stale."""
    old = default_side()
    program = _program()
    ids = [str(p) for p in old.graph.participant_index[:60]]
    client, headers = api_client(state_over(old))
    before = _answered(client, headers, program, ids)  # the old basis has this program's cohort now
    tables = dict(world().tables)
    a = tables["achievements"]
    rng = np.random.default_rng(5)
    tables["achievements"] = a[rng.random(len(a)) < 0.6].reset_index(drop=True)  # a much thinner record
    new = fitted_side(graph_of(tables), world().as_of, team_model=False)
    client2, headers2 = api_client(state_over(new))
    after = _answered(client2, headers2, program, ids)
    assert after == _reference(new, program, ids)
    assert after != before
