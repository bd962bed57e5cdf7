"""Schemathesis over every operation of the API: no request, however odd, gets a 5xx, and
every answer is one the OpenAPI file documents (status, media type, headers, body schema).

The schema is the app's own (`app.openapi()`, what `/openapi.json` serves and
docs/openapi.json holds). Each operation is one test per database, against a real app
in-process over a fresh database seeded through the public API: a workflow with runs, a
graph and recommendations, so that path parameters hit existing rows half of the time (the
`flatmap_path_parameters` hook) instead of answering 404 every time. Every request carries an
admin key. The cases are the same on every run (a fixed seed, no example database): a
failure reproduces with the same command, and its report ends with a curl line.
docs/contributing.md says more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from schemathesis import Case, HookContext

from flowscope.config import Settings
from flowscope.server import create_app
from tests.api.test_advisor_api import APP, RECS, WORKFLOW, graph, runs
from tests.conftest import KeyFactory, auth
from tests.factories import T0

# Fuzzing examples per operation, on top of the examples and boundary-value (coverage)
# phases; sized so that the module takes about a minute per database on a small machine.
# A longer hunt: FLOWSCOPE_FUZZ_EXAMPLES=500 FLOWSCOPE_FUZZ_SEED=7 pytest tests/api/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("FLOWSCOPE_FUZZ_EXAMPLES", "50"))
SEED = int(os.environ.get("FLOWSCOPE_FUZZ_SEED", "20261101"))

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "checks": {
            # Only the checks below. Left out: negative_data_rejection (the API validates in
            # pydantic's lax mode, which takes "5" or true for an integer) and
            # positive_data_acceptance (a schema-valid id of a row that is not there is a 404).
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
        },
        # The keys are throwaway ones of a test database: show them, so the curl line runs.
        "output": {"sanitization": {"enabled": False}},
    }
)
# The OTLP protobuf body is bytes: send what is generated as is (the decoder must refuse it
# with a 400, never fail).
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")

# The document /openapi.json serves, from an app that is never started: from_asgi would run
# the app's lifespan at collection, before any database fixture. Each case goes in-process
# over ASGI to the app of its own test (`app=` below).
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite://")).openapi(), config=CONFIG
)
AUTH_HEADERS = frozenset({"authorization", "x-flowscope-api-key"})


# What the seed creates in an empty database (the fixture checks it): the hook below names
# these in half of the cases. Hooks run at collection too, so they cannot ask the fixture.
PATH_VALUES: dict[str, Any] = {
    "app_id": APP,
    "workflow_id": WORKFLOW,
    "run_id": "fuzz-run-0",
    "recommendation_id": 1,
    "key_id": 2,  # the spare key; the admin key (1) is never revoked, see test_api
}
ADMIN_KEY_ID = 1


@schema.hook
def flatmap_path_parameters(
    context: HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Half of the cases name the seeded app, workflow, run, recommendation or key."""
    known = {k: v for k, v in PATH_VALUES.items() if k in (path_parameters or {})}
    if not known:
        return st.just(path_parameters)
    return st.booleans().map(lambda use: {**path_parameters, **known} if use else path_parameters)


@dataclass
class Seeded:
    app: FastAPI
    admin_key: str


@pytest.fixture
def seeded(db_url: str, make_key: KeyFactory) -> Seeded:
    """A fresh app over the test's empty database, with a workflow, its runs (in the last
    day, so that default windows see them), its graph and recommendations, through the API."""
    app = create_app(Settings(database_url=db_url, auto_migrate=False))
    admin_key = make_key("admin", name="fuzz-admin")
    make_key("read", name="fuzz-spare")
    headers = auth(admin_key)
    first = int((datetime.now(UTC) - timedelta(days=1) - T0).total_seconds() // 60)
    body = runs(40, keywords_s=0.5, first=first)
    for n, item in enumerate(body["runs"]):
        item["id"] = f"fuzz-run-{n}"
    end = (T0 + timedelta(minutes=first + 50)).isoformat()
    # The TestClient runs the app's lifespan for the seed and ends it; schemathesis starts
    # it again for the cases (and ends it after the test).
    with TestClient(app) as client:
        posted = client.post("/api/v1/runs", json=body, headers=headers)
        assert posted.status_code == 200, posted.text
        put = client.put(
            f"/api/v1/apps/{APP}/workflows/{WORKFLOW}/graph", json=graph("start"), headers=headers
        )
        assert put.status_code == 200, put.text
        generated = client.post(RECS, json={"days": 2, "end": end}, headers=headers)
        assert generated.status_code == 200, generated.text
        recommendations = client.get(RECS, headers=headers).json()["data"]
        keys = client.get("/api/v1/keys", headers=headers).json()["data"]
    assert PATH_VALUES["recommendation_id"] in {r["id"] for r in recommendations}
    ids = {k["name"]: k["id"] for k in keys}
    assert ids == {"fuzz-admin": ADMIN_KEY_ID, "fuzz-spare": PATH_VALUES["key_id"]}
    return Seeded(app=app, admin_key=admin_key)


@schema.parametrize()
# One database per operation, shared by its examples on purpose (what one case stores, the
# next may read); big bodies and slow analytics are what the test is for.
@settings(
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ]
)
def test_api(case: Case, seeded: Seeded) -> None:
    # Every case is an admin's; a generated key header would only ever get a 401.
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in AUTH_HEADERS}
    if case.path_parameters and _reads_as_admin_key_id(case.path_parameters.get("key_id")):
        # Revoking the key the cases use would leave only 401s for the rest of the test.
        case.path_parameters["key_id"] = PATH_VALUES["key_id"]
    case.call_and_validate(app=seeded.app, headers=auth(seeded.admin_key))


def _reads_as_admin_key_id(value: object) -> bool:
    """Whether the API reads this path value ("1", " 1", ...) as the admin key's id."""
    try:
        return TypeAdapter(int).validate_python(value) == ADMIN_KEY_ID
    except ValidationError:
        return False
