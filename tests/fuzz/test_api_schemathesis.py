"""Schemathesis against the API's own OpenAPI schema, in process: no generated request may get a 5xx.

Each operation gets up to 40 generated requests (valid and invalid ones), derandomized so a run is
repeatable, sent with an administrator's token against a world with a fleet, an approved bulletin and a
connected broker. A last test proves the same check fails on an app with a deliberately broken route.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import ServerError, not_a_server_error
from schemathesis.core.failures import FailureGroup

MAX_EXAMPLES = 40
STATUSES: dict[str, Counter] = {}  # operation -> status codes answered, for the reach check below
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failing request is reported as first found
)


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the schema; it does not depend on the data, so any runtime will do."""
    from broadcast_server.api.app import create_app
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import get_settings

    app = create_app(Runtime.from_settings(get_settings(database_url="sqlite://")), manage_runtime=False)
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return [(m.upper(), path) for path, item in app.openapi()["paths"].items() for m in item if m in methods]


OPERATIONS = _operations()


# Creating or editing a text bulletin synthesises and renders speech (about a second each): fewer examples.
SLOW_OPERATIONS = {("POST", "/api/v1/bulletins"): 12, ("PATCH", "/api/v1/bulletins/{bulletin_id}"): 12}


@pytest.fixture(scope="module")
def api_schema(served_world):
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", served_world.app())


@pytest.fixture(scope="module")
def known_ids(served_world) -> dict[str, list]:
    """Ids of real rows for path parameters (a broadcast is made through the API), so cases reach past 404."""
    from fastapi.testclient import TestClient

    with TestClient(served_world.app()) as client:
        made = client.post(
            "/api/v1/broadcasts",
            headers=served_world.headers,
            json={"bulletin_id": served_world.bulletin_id, "target": {"unit_ids": served_world.commune_ids[:1]}},
        )
    assert made.status_code == 201, made.text
    return {
        "bulletin_id": [served_world.bulletin_id],
        "broadcast_id": [made.json()["id"]],
        "cluster_id": served_world.cluster_ids[:3],
        "owner_unit_id": served_world.commune_ids,
        "scope_unit_id": served_world.commune_ids,
        "unit_ids": served_world.commune_ids,
    }


def _with_known_ids(strategy, known: dict[str, list], keep_token_id: int):
    """Half the cases name real rows: every path parameter and body field that names one gets a real id.

    The administrator's own token is never revoked by a fuzzed DELETE, or every later request would get 401.
    """

    @st.composite
    def cases(draw):
        case = draw(strategy)
        if str(case.path_parameters.get("token_id") if case.path_parameters else "") == str(keep_token_id):
            case.path_parameters["token_id"] = keep_token_id + 1000
        if not draw(st.booleans()):
            return case
        for name, values in known.items():
            if case.path_parameters and name in case.path_parameters:
                case.path_parameters[name] = draw(st.sampled_from(values))
            if isinstance(case.body, dict) and name in case.body:
                case.body[name] = draw(st.sampled_from(values))
        if isinstance(case.body, dict) and "target" in case.body:
            case.body["target"] = {
                "unit_ids": draw(st.lists(st.sampled_from(known["unit_ids"]), min_size=1, max_size=2))
            }
        return case

    return cases()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error(method: str, path: str, api_schema, known_ids, served_world) -> None:
    """Up to MAX_EXAMPLES generated requests to one operation, none answered with a 5xx."""

    @settings(FUZZ_SETTINGS, max_examples=SLOW_OPERATIONS.get((method, path), MAX_EXAMPLES))
    @given(case=_with_known_ids(api_schema[path][method].as_strategy(), known_ids, served_world.token_id))
    def fuzz(case) -> None:
        response = case.call_and_validate(headers=served_world.headers, checks=[not_a_server_error])
        STATUSES.setdefault(f"{method} {path}", Counter())[response.status_code] += 1

    fuzz()


# Operations that must have succeeded at least once: proof the generated requests reach the real work
# (speech made, commands published to the broker, rows read) rather than all stopping at 401, 404 or 422.
MUST_SUCCEED = [
    "POST /api/v1/bulletins",
    "GET /api/v1/bulletins/{bulletin_id}",
    "POST /api/v1/broadcasts",
    "GET /api/v1/broadcasts/{broadcast_id}/coverage",
    "POST /api/v1/clusters/{cluster_id}/commands",
    "GET /api/v1/statistics/communes",
    "GET /api/v1/auth/me",  # fuzzed after DELETE /tokens/{token_id}: the token still works
]


@pytest.mark.parametrize("operation", MUST_SUCCEED)
def test_generated_requests_reach_the_real_work(operation: str) -> None:
    if operation not in STATUSES:
        pytest.skip(f"{operation} was not fuzzed in this run")
    statuses = STATUSES[operation]
    assert any(200 <= code < 300 for code in statuses), dict(statuses)


def test_schema_covers_the_api(served_world) -> None:
    """The fuzzed schema holds every /api/v1 route that needs a token, so none escapes the check."""
    paths = set(schemathesis.openapi.from_asgi("/api/v1/openapi.json", served_world.app()).raw_schema["paths"])
    for expected in (
        "/api/v1/bulletins",
        "/api/v1/bulletins/{bulletin_id}",
        "/api/v1/broadcasts",
        "/api/v1/clusters/{cluster_id}/commands",
        "/api/v1/statistics/communes",
        "/api/v1/enrol",
        "/api/v1/audio/{sha256}",
    ):
        assert expected in paths


def test_the_check_catches_a_server_error() -> None:
    """A throwaway app whose route answers 500 on some input: the same settings and check must find it."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI(openapi_url="/openapi.json")

    @app.get("/items/{item_id}")
    def item(item_id: int):
        if item_id % 7 == 0:
            return JSONResponse({"detail": "broken"}, status_code=500)
        return {"id": item_id}

    operation = schemathesis.openapi.from_asgi("/openapi.json", app)["/items/{item_id}"]["GET"]

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy())
    def fuzz(case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    with pytest.raises(FailureGroup) as caught:
        fuzz()
    assert any(isinstance(failure, ServerError) for failure in caught.value.exceptions)
