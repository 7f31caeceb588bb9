"""Schema fuzzing: requests generated from the app's own OpenAPI schema never get a 5xx or an off-schema answer."""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import CheckFunction
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema
from starlette.testclient import TestClient

from recommender.columns import Columns
from serving.app import create_app
from serving.settings import Settings
from tests.registry import use_tmp_registry
from tests.serving.conftest import scope_keys, sqlite_store
from tests.serving.people_world import assert_no_identity, default_side, state_over, world

# The operations, read from the app's own schema (the schema does not depend on the state served).
OPERATIONS = sorted((method.upper(), path) for path, methods in create_app(Settings()).openapi()["paths"].items()
                    for method in methods)
# Schema-valid requests these operations rightly refuse with 422: a JSON schema cannot say that a goal's
# competence or program must exist, or that `groups` has one entry per `participant_ids` entry.
SEMANTIC_422 = {("GET", "/v1/participants/{participant_id}/trajectory"),
                ("POST", "/v1/events/{event_id}/team-formation")}
FUZZ = hypothesis.settings(max_examples=10, deadline=None, database=None, derandomize=True,
                           suppress_health_check=list(hypothesis.HealthCheck))


def known_ids() -> dict[str, list[str]]:
    """Ids of the served world by path parameter: random strings alone would only ever reach the 404 branch."""
    tables = world().tables
    return {
        "participant_id": tables["participants"][Columns.Participant].astype(str).head(50).tolist(),
        "event_id": tables["events"][Columns.Event].astype(str).head(50).tolist(),
        "team_id": tables["teams"]["team_id"].astype(str).head(50).tolist(),
        "program_id": tables["programs"]["program_id"].astype(str).tolist(),
    }


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenApiSchema, dict[str, str]]]:
    """A small synthetic world with every model (next steps, profiles, mentors, teams), a SQLite store with keys
    and an empty registry behind POST /v1/models/reload, shared by the operations (writes accumulate, as they
    would in a running service); the admin key's header (admin passes every scope check: every handler runs)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    state = state_over(default_side())
    state.store = sqlite_store(tmp / "store")
    with pytest.MonkeyPatch.context() as mp:
        use_tmp_registry(tmp, mp)
        headers = scope_keys(state.store)
        client = TestClient(create_app(Settings(), state=state))
        yield schemathesis.openapi.from_asgi("/openapi.json", client.app), headers["admin"]
    state.store.close()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_within_its_schema(
    api_schema: tuple[OpenApiSchema, dict[str, str]], method: str, path: str
) -> None:
    schema, auth = api_schema
    operation = schema[path][method]
    ids = known_ids()

    @FUZZ
    @hypothesis.given(case=operation.as_strategy(), data=st.data())
    def fuzz(case: Case, data: st.DataObject) -> None:
        for name in list(case.path_parameters or {}):
            if name in ids and data.draw(st.booleans(), label=f"known {name}"):
                case.path_parameters[name] = data.draw(st.sampled_from(ids[name]), label=name)
        excluded: list[CheckFunction] = [positive_data_acceptance] if (method, path) in SEMANTIC_422 else []
        response = case.call_and_validate(headers=auth, excluded_checks=excluded)
        if response.headers.get("content-type", [""])[0].startswith("application/json"):
            assert_no_identity(response.json())

    fuzz()


def test_the_schema_documents_the_model_routes() -> None:
    assert {("GET", "/v1/models"), ("POST", "/v1/models/reload"), ("GET", "/v1/health")} <= set(OPERATIONS)
