"""The ASGI application: `create_app(settings)` builds one; nothing is read at import time."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import InterfaceError, OperationalError

from flowscope import __version__, web
from flowscope.advisor.thresholds import make_thresholds
from flowscope.analytics.critical_path import set_default_tolerance_us
from flowscope.api import errors
from flowscope.api.body import refuse_nul_in_params
from flowscope.api.routes import (
    advisor,
    apps,
    cache,
    health,
    keys,
    metrics,
    otlp,
    performance,
    runs,
)
from flowscope.cache.backends import open_backend
from flowscope.cache.backends.base import FaultTolerantBackend
from flowscope.cache.policy import CachePolicy
from flowscope.cache.service import effective_policy
from flowscope.cache.stats import CacheCounters
from flowscope.config import Settings
from flowscope.integrations.otlp_duplicates import prune_calls
from flowscope.integrations.otlp_ingest import prune_spans, settle_rootless_traces
from flowscope.integrations.otlp_receive import OtlpReceiver
from flowscope.runs.pricing import PriceBook
from flowscope.schemas import RUN_BATCH_CREATE
from flowscope.store import dialect, migrate
from flowscope.store.engine import make_engine, write_transaction
from flowscope.timeutil import HOUR_US, SECOND_US, now_us
from flowscope.web.headers import SecurityHeaders

log = logging.getLogger("flowscope")

DESCRIPTION = """Performance analytics, result cache and optimization advisor for LLM workflows.

Every route but `/healthz` takes `Authorization: Bearer fsk_...` (or an
`x-flowscope-api-key: fsk_...` header). List endpoints answer
`{"data": [...], "next_cursor": ...}`; times are UTC.
"""


CACHE_FLUSH_INTERVAL_S = 5
CACHE_CLEANUP_INTERVAL_S = 600


async def _cache_chores(cache: FaultTolerantBackend, counters: CacheCounters, engine: Any) -> None:
    """Flush the cache counters every few seconds and drop expired entries every 10 minutes."""
    elapsed = 0
    while True:
        await asyncio.sleep(CACHE_FLUSH_INTERVAL_S)
        elapsed += CACHE_FLUSH_INTERVAL_S
        try:
            await asyncio.to_thread(counters.flush, engine)
        except Exception:  # the database is down: the counts wait for the next flush
            log.warning("could not write cache statistics; will retry", exc_info=True)
        if elapsed >= CACHE_CLEANUP_INTERVAL_S:
            elapsed = 0
            await asyncio.to_thread(cache.cleanup)


SPAN_PRUNE_INTERVAL_S = 600
GRPC_SHUTDOWN_GRACE_S = 5


async def _prune_spans(engine: Any, retention_hours: float, prices: PriceBook) -> None:
    """Every 10 minutes: traces that waited that long for a root that will not come become
    runs; OTLP spans and calls older than the retention are forgotten (their runs stay)."""
    while True:
        await asyncio.sleep(SPAN_PRUNE_INTERVAL_S)
        now = now_us()
        cutoff = now - int(retention_hours * HOUR_US)
        quiet_since = now - SPAN_PRUNE_INTERVAL_S * SECOND_US
        try:
            await asyncio.to_thread(_prune_once, engine, cutoff, quiet_since, prices)
        except Exception:  # the database is down: try again next time
            log.warning("could not prune received OTLP spans; will retry", exc_info=True)


def _prune_once(engine: Any, cutoff_us: int, quiet_since_us: int, prices: PriceBook) -> None:
    settle_rootless_traces(engine, prices=prices, quiet_since_us=quiet_since_us)
    with write_transaction(engine) as conn:
        prune_spans(conn, cutoff_us)
        prune_calls(conn, cutoff_us)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        if settings.auto_migrate:
            migrate.upgrade_if_embedded(engine)
        app.state.engine = engine
        app.state.ingest_slots = slots = asyncio.Semaphore(dialect.ingest_slots(engine))
        app.state.otlp_receiver = receiver = OtlpReceiver(
            engine, app.state.prices, slots, settings.otlp_queue_limit
        )
        timeout_s = settings.cache_timeout_ms / 1000
        cache_backend = FaultTolerantBackend(
            open_backend(settings.cache_url, engine=engine, timeout_s=timeout_s), timeout_s
        )
        app.state.cache = cache_backend
        app.state.cache_counters = counters = CacheCounters()
        grpc_server = None
        if settings.otlp_grpc_port is not None:
            # Imported only here: gRPC takes ~90 ms to import, paid only by servers using it.
            from flowscope.api.otlp_grpc import start_grpc_server

            grpc_server = await start_grpc_server(
                receiver, settings.host, settings.otlp_grpc_port, settings.max_body_bytes
            )
        cleaner = asyncio.create_task(_cache_chores(cache_backend, counters, engine))
        pruner = asyncio.create_task(
            _prune_spans(engine, settings.otlp_span_retention_hours, app.state.prices)
        )
        # Everything loaded so far lives as long as the server: keep it out of the cyclic
        # collector's scans, which otherwise took a third of some analytics requests (an
        # hourly trend builds ~100,000 objects: p95 136 ms -> 63 ms, p50 56 -> 48 ms).
        gc.freeze()
        try:
            yield
        finally:
            if grpc_server is not None:  # calls under way get a few seconds to finish
                await grpc_server.stop(GRPC_SHUTDOWN_GRACE_S)
            cleaner.cancel()
            pruner.cancel()
            try:
                counters.flush(engine)
            except Exception:
                log.warning("cache statistics of the last seconds were lost", exc_info=True)
            cache_backend.close()
            engine.dispose()

    # FastAPI's /docs and /redoc with their scripts and styles served from here, not a CDN.
    app = FastAPIOffline(
        title="flowscope",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_in_params)],
    )
    app.state.settings = settings
    set_default_tolerance_us(round(settings.critical_path_tolerance_ms * 1000))
    effective_policy(CachePolicy(), settings.cache_ttl_seconds)  # a bad default fails here
    app.state.advisor_thresholds = make_thresholds(settings.advisor_thresholds)
    app.state.prices = PriceBook()
    for module in (health, runs, apps, keys, performance, cache, advisor, metrics, otlp):
        app.include_router(module.router)
    web.install(app)
    app.add_middleware(SecurityHeaders)
    errors.install_handlers(app)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After when the database cannot be reached: clients retry (the SDK
    spools meanwhile), and nothing of the request was stored."""
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the database is unavailable; nothing was stored, retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    # POST /api/v1/runs reads its body itself (for speed); publish the model it validates.
    body = RUN_BATCH_CREATE.json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(body.pop("$defs", {}))
    components["RunBatchCreate"] = body
    components["ErrorMessage"] = {
        "title": "ErrorMessage",
        "type": "object",
        "properties": {"detail": {"type": "string", "title": "Detail"}},
        "required": ["detail"],
    }
    _document_errors(schema["paths"])
    app.openapi_schema = schema
    return schema


_ERRORS_OF_EVERY_KEYED_ROUTE = {
    "401": "No API key, or an unknown or revoked one",
    "403": "The key's role may not do this",
    "503": "The database is unreachable (Retry-After: 5); nothing was stored",
}


def _document_errors(paths: dict[str, Any]) -> None:
    """The error answers every route under /api/ can give, documented once (with the
    shape FastAPI gives them, `{"detail": "..."}`), beside those a route documents itself;
    a route with a body also answers 400 to bytes it cannot decode."""
    for path, operations in paths.items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            wanted = dict(_ERRORS_OF_EVERY_KEYED_ROUTE)
            if "{" in path:
                wanted["404"] = "Not found in the caller's tenant"
            if "requestBody" in operation:
                wanted["400"] = "The body cannot be read as JSON (not UTF-8)"
            for status, description in wanted.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorMessage"}
                            }
                        },
                    },
                )


def create_app_from_env() -> FastAPI:
    """Factory for server processes: settings come from FLOWSCOPE_* environment variables."""
    return create_app(Settings())
