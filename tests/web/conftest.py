"""Dashboard fixtures: demo data, signed-in HTTP clients, and a real Chromium for browser tests.

Browser tests drive Debian's Chromium through Playwright (no browser download). Where it is
missing the setup installs it with apt-get; if that fails the browser tests are skipped with
the reason, except under CI=true, where they fail: CI never passes by skipping them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from flowscope.demo.seed import seed_demo
from flowscope.store import migrate
from flowscope.store.engine import make_engine, write_transaction
from flowscope.tenancy.keys import create_key
from flowscope.web.pages.home import LOGIN_COOKIE
from tests.conftest import IN_CI
from tests.servers import Server, start_server

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# The demo's last run lands just before the end: pages with the default windows show it all.
DEMO_END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


__all__ = ["LOGIN_COOKIE", "form_token", "post_login", "sign_in"]


def post_login(client: TestClient, key: str, next: str = "/", **kwargs: Any) -> Any:
    """POST the sign-in form as a browser does: with the token of the form it was given."""
    page = client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    data = {"key": key, "next": next, "login_token": token[1]}
    return client.post("/login", data=data, follow_redirects=False, **kwargs)


def sign_in(client: TestClient, key: str) -> TestClient:
    response = post_login(client, key)
    assert response.status_code == 303, response.text
    return client


def form_token(html: str) -> str:
    """The csrf value of the first form of a page."""
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.fixture
def demo_engine(engine: Engine) -> Engine:
    """The parametrised database (SQLite, PostgreSQL) with 300 demo runs in tenant 'demo'."""
    seed_demo(engine, runs=300, end=DEMO_END)
    return engine


@pytest.fixture
def demo_keys(demo_engine: Engine) -> dict[str, str]:
    with write_transaction(demo_engine) as conn:
        return {
            role: create_key(conn, "demo", f"web {role}", role).key  # type: ignore[arg-type]
            for role in ("read", "admin", "ingest")
        } | {"foreign": create_key(conn, "globex", "other tenant", "admin").key}


@pytest.fixture
def web(client: TestClient, demo_keys: dict[str, str]) -> TestClient:
    """The app in-process, signed in with the demo tenant's read key."""
    return sign_in(client, demo_keys["read"])


# Browser tests: one demo database and one server process for the whole session.


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists() and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            capture_output=True,
            timeout=900,
            check=False,
        )
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} and `apt-get install chromium` failed"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: browser tests must run)")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def demo_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, dict[str, str]]]:
    """A `flowscope serve` process over a SQLite file with 2,000 demo runs, and its keys."""
    path = tmp_path_factory.mktemp("web") / "demo.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    seed_demo(engine, runs=2000, end=DEMO_END)
    with write_transaction(engine) as conn:
        keys = {
            role: create_key(conn, "demo", f"browser {role}", role).key  # type: ignore[arg-type]
            for role in ("read", "admin")
        } | {"foreign": create_key(conn, "globex", "other tenant", "admin").key}
    engine.dispose()
    server = start_server(
        ["--database-url", url, "--log-level", "warning"], log=path.parent / "server.log"
    )
    yield server, keys
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris"
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def browser_sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def screenshot(page: Any, name: str) -> None:
    """Save the page as docs/screenshots/NAME.png (the README shows some)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
