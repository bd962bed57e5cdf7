"""Cache storage backends behind one Protocol, chosen by URL.

memory://?max_entries=10000           in-process LRU with TTLs
sql://                                the flowscope database engine passed in
sqlite:///path.db                     a SQLite file (migrated on open, as embedded ones are)
postgresql+psycopg://...              a PostgreSQL database (migrated by `flowscope db upgrade`)
redis://host:port/db                  Redis (rediss:// for TLS)
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Engine

from flowscope.cache.backends.base import (
    CacheBackend,
    Entry,
    FaultTolerantBackend,
    LeaseBackend,
)
from flowscope.cache.backends.singleflight import Lookup, SingleFlight

__all__ = [
    "SCHEMES",
    "CacheBackend",
    "Entry",
    "FaultTolerantBackend",
    "LeaseBackend",
    "Lookup",
    "SingleFlight",
    "open_backend",
]


def open_backend(
    url: str, *, engine: Engine | None = None, timeout_s: float = 0.05
) -> CacheBackend:
    """The backend a cache URL names; `engine` is the flowscope database's, for `sql://`.

    `timeout_s` bounds each Redis call (socket timeouts) and each PostgreSQL statement.
    """
    scheme = urlsplit(url).scheme.lower()
    opener = OPENERS.get(scheme)
    if opener is None:
        raise ValueError(
            f"unsupported cache URL scheme {scheme!r}: use one of "
            "memory://, sql://, sqlite:///..., postgresql+psycopg://..., redis://..."
        )
    return opener(url, engine, timeout_s)


def _memory(url: str, engine: Engine | None, timeout_s: float) -> CacheBackend:
    from flowscope.cache.backends.memory import MemoryBackend

    query = parse_qs(urlsplit(url).query)
    return MemoryBackend(max_entries=int(query.get("max_entries", ["10000"])[-1]))


def _flowscope_database(url: str, engine: Engine | None, timeout_s: float) -> CacheBackend:
    from flowscope.cache.backends.sql import SQLBackend

    if engine is None:
        raise ValueError("the cache URL sql:// needs the flowscope database engine")
    return SQLBackend(engine, timeout_s=timeout_s)


def _own_database(url: str, engine: Engine | None, timeout_s: float) -> CacheBackend:
    from flowscope.cache.backends.sql import SQLBackend
    from flowscope.store.engine import make_engine
    from flowscope.store.migrate import upgrade_if_embedded

    own = make_engine(url)
    upgrade_if_embedded(own)
    return SQLBackend(own, owns_engine=True, timeout_s=timeout_s)


def _redis(url: str, engine: Engine | None, timeout_s: float) -> CacheBackend:
    from flowscope.cache.backends.redis import RedisBackend

    return RedisBackend(url, timeout_s=timeout_s)


Opener = Callable[[str, Engine | None, float], CacheBackend]
"""Opens a backend from its URL, the flowscope engine and the per-call timeout; imports
stay inside, so an unused backend costs nothing."""

OPENERS: dict[str, Opener] = {
    "memory": _memory,
    "sql": _flowscope_database,
    "sqlite": _own_database,
    "postgresql": _own_database,
    "postgresql+psycopg": _own_database,
    "redis": _redis,
    "rediss": _redis,
}
"""The cache backends by URL scheme: a new backend is a module and a line here."""

SCHEMES = tuple(OPENERS)
