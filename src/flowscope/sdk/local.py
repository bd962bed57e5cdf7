"""The in-process transport: batches go straight into a flowscope database, no server.

Its imports (SQLAlchemy, pydantic, the price table) are kept out of `flowscope.sdk` so that
an application recording over HTTP does not pay for them.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from flowscope.ingestion.ingest import ingest_runs
from flowscope.problems import IngestRejected
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.common import error_details, problem_details
from flowscope.schemas.runs import RUN_CREATE, RunCreate
from flowscope.sdk.transport import ACCEPTED, Errors, Outcome, by_run, retrying
from flowscope.store import migrate
from flowscope.store.engine import make_engine, write_transaction
from flowscope.tenancy.keys import ensure_tenant

log = logging.getLogger("flowscope.sdk")


class InProcessTransport:
    """Ingests batches straight into a flowscope database (no server), as the API would."""

    def __init__(
        self, database_url: str, tenant: str, *, attempts: int = 3, backoff: float = 0.25
    ) -> None:
        self._engine = make_engine(database_url, pool_size=1)
        url = make_url(database_url).render_as_string(hide_password=True)
        self.destination = f"{url}#tenant={tenant}"
        self._tenant = tenant
        self._tenant_id: int | None = None
        self._prices = PriceBook()
        self._attempts = attempts
        self._backoff = backoff

    def _prepare(self) -> int:
        # Lazily, on the background thread: a slow or absent database must not stall startup.
        if self._tenant_id is None:
            migrate.upgrade_if_embedded(self._engine)
            with write_transaction(self._engine) as conn:
                self._tenant_id = ensure_tenant(conn, self._tenant)
        return self._tenant_id

    def send(self, runs: list[dict[str, Any]]) -> Outcome:
        models: list[RunCreate] = []
        invalid: dict[int, Errors] = {}
        for i, raw in enumerate(runs):
            try:
                models.append(RUN_CREATE.validate_python(raw))
            except ValidationError as exc:
                invalid[i] = error_details(exc, "body", "runs", i)
        if invalid:
            return Outcome("rejected", rejected=invalid)
        return retrying(self._attempts, self._backoff, lambda: self._ingest(models))

    def _ingest(self, models: list[RunCreate]) -> Outcome | tuple[str, float]:
        try:
            tenant_id = self._prepare()
            with write_transaction(self._engine) as conn:
                ingest_runs(conn, tenant_id, models, prices=self._prices)
        except IngestRejected as exc:
            return by_run(problem_details(exc.problems, "body"), len(models))
        except DBAPIError as exc:  # lost connection, locked database, ...
            return f"{self.destination}: {type(exc.orig).__name__}: {exc.orig}", 0.0
        except Exception as exc:
            log.exception("flowscope could not store a batch in %s", self.destination)
            return Outcome("keep", f"{type(exc).__name__}: {exc}")
        return ACCEPTED

    def close(self) -> None:
        self._engine.dispose()
