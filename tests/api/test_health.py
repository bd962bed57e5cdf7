"""GET /healthz reports database reachability."""

from __future__ import annotations

from fastapi.testclient import TestClient

from flowscope.config import Settings
from flowscope.server import create_app
from tests.servers import free_port


def test_healthz_is_503_when_the_database_is_down() -> None:
    # Nothing listens on this port: the database is unreachable, the server still answers.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    with TestClient(create_app(Settings(database_url=url, auto_migrate=False))) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_requests_get_503_with_retry_after_when_the_database_is_down() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    with TestClient(create_app(Settings(database_url=url, auto_migrate=False))) as client:
        for method, path in [("GET", "/api/v1/apps"), ("POST", "/api/v1/runs")]:
            response = client.request(
                method, path, headers={"Authorization": "Bearer fsk_x"}, json={"runs": []}
            )
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            assert "nothing was stored" in response.json()["detail"]
