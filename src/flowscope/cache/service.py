"""The cache as engines use it: look a node result up, store one, under the workflow's policy.

A lookup or store decides first whether the node may be cached at all (policy.py), then
computes the key (keys.py) and talks to the backend through FaultTolerantBackend, so a slow
or unreachable backend is a miss or a dropped store, never an error for the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from flowscope import catalog
from flowscope.cache.backends.base import CacheBackend, Entry, LeaseBackend
from flowscope.cache.keys import CacheKeyError, cache_key
from flowscope.cache.policy import (
    MAX_VALUE_BYTES,
    CachePolicy,
    Decision,
    decide,
    merge_policy,
    policy_as_dict,
)
from flowscope.cache.stats import CacheCounters
from flowscope.store import dialect
from flowscope.timeutil import now_us

_NONE: Mapping[str, int] = {}
_FAILED = frozenset({"failed", "exception", "stopped"})


@dataclass(frozen=True, slots=True)
class NodeCall:
    """One node execution's identity, configuration and resolved inputs."""

    app_id: str
    workflow_id: str
    node_id: str
    node_type: str
    config: Mapping[str, Any]
    inputs: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Lookup:
    hit: bool
    key: str | None
    cacheable: bool
    reason: str | None = None
    entry: Entry | None = None
    lease: bool | None = None  # asked for on a miss: True, compute it; False, another is


@dataclass(frozen=True, slots=True)
class Stored:
    stored: bool
    key: str | None
    expires_at_us: int | None = None
    reason: str | None = None


def read_policy(conn: Connection, workflow_pk: int | None) -> CachePolicy:
    """The workflow's policy: what was PUT for it, over the defaults."""
    if workflow_pk is None:
        return CachePolicy()
    mark = dialect.mark(conn)
    raw = conn.exec_driver_sql(
        f"SELECT policy FROM cache_policies WHERE workflow_pk = {mark}", (workflow_pk,)
    ).scalar_one_or_none()
    return CachePolicy() if raw is None else merge_policy(CachePolicy(), orjson.loads(raw))


def write_policy(conn: Connection, workflow_pk: int, patch: Mapping[str, Any]) -> CachePolicy:
    """Apply a PUT body (fields left out keep their values); PolicyError when invalid."""
    policy = merge_policy(read_policy(conn, workflow_pk), patch)
    dialect.bulk_upsert(
        conn,
        "cache_policies",
        ("workflow_pk", "policy", "updated_at_us"),
        ("workflow_pk",),
        "DO UPDATE SET policy = excluded.policy, updated_at_us = excluded.updated_at_us",
        [(workflow_pk, orjson.dumps(policy_as_dict(policy)).decode(), now_us())],
    )
    return policy


def effective_policy(policy: CachePolicy, default_ttls: Mapping[str, int]) -> CachePolicy:
    """The workflow's policy over the server's default TTLs by node type (settings)."""
    if not default_ttls:
        return policy
    return CachePolicy(
        enabled=policy.enabled,
        ttl_seconds={**default_ttls, **policy.ttl_seconds},
        nodes=policy.nodes,
    )


def _decide(
    conn: Connection,
    tenant_id: int,
    tenant: str,
    call: NodeCall,
    default_ttls: Mapping[str, int],
) -> tuple[Decision, str | None]:
    workflow_pk = catalog.read_workflow_pk(conn, tenant_id, call.app_id, call.workflow_id)
    policy = effective_policy(read_policy(conn, workflow_pk), default_ttls)
    decision = decide(policy, call.node_id, call.node_type, call.config)
    try:
        key = cache_key(
            tenant=tenant,
            app_id=call.app_id,
            workflow_id=call.workflow_id,
            node_id=call.node_id,
            node_type=call.node_type,
            config=call.config,
            inputs=call.inputs,
        )
    except CacheKeyError as error:
        return Decision(False, None, f"no cache key: {error}"), None
    return decision, key


def lookup(
    conn: Connection,
    backend: CacheBackend,
    tenant_id: int,
    tenant: str,
    call: NodeCall,
    counters: CacheCounters | None = None,
    default_ttls: Mapping[str, int] = _NONE,
    lease_ms: int | None = None,
) -> Lookup:
    """A hit returns the stored entry; anything that may not be cached is a miss (and is not
    counted as a lookup). With `lease_ms`, a miss also asks to be the one computing the
    result (`lease`); the lease ends when the result is stored, or after `lease_ms`. A hit
    saves what computing the entry took, as recorded with it (or, when that was not given,
    the node's observed median: added when statistics are read)."""
    decision, key = _decide(conn, tenant_id, tenant, call, default_ttls)
    if key is None or not decision.cacheable:
        return Lookup(False, key, False, decision.reason)
    entry = backend.get(tenant_id, key)
    if counters is not None:
        at = (tenant_id, call.app_id, call.workflow_id, call.node_id)
        if entry is None:
            counters.count(*at, lookups=1)
        else:
            counters.count(
                *at,
                lookups=1,
                hits=1,
                unmeasured_hits=entry.elapsed_ms is None,
                time_saved_ms=entry.elapsed_ms or 0.0,
                cost_saved=entry.cost or 0.0,
            )
    lease = None
    if entry is None and lease_ms is not None and isinstance(backend, LeaseBackend):
        # Single-flight across callers and processes: one computes, the others look again.
        lease = backend.acquire_lease(tenant_id, key, lease_ms)
    return Lookup(entry is not None, key, True, None, entry, lease)


def store(
    conn: Connection,
    backend: CacheBackend,
    tenant_id: int,
    tenant: str,
    call: NodeCall,
    value: Any,
    *,
    status: str = "succeeded",
    elapsed_ms: float | None = None,
    cost: float | None = None,
    counters: CacheCounters | None = None,
    default_ttls: Mapping[str, int] = _NONE,
) -> Stored:
    """Store a result if the policy allows it, it succeeded and it is within the size limit."""
    decision, key = _decide(conn, tenant_id, tenant, call, default_ttls)
    if key is None or not decision.cacheable or decision.ttl_seconds is None:
        return Stored(False, key, reason=decision.reason)
    if status in _FAILED:
        if isinstance(backend, LeaseBackend):
            backend.release_lease(tenant_id, key)  # the waiters compute for themselves
        return Stored(False, key, reason=f"a {status} result is never cached")
    at = (tenant_id, call.app_id, call.workflow_id, call.node_id)
    body = orjson.dumps(value)
    if len(body) > MAX_VALUE_BYTES:
        if counters is not None:
            counters.count(*at, skipped=1)
        return Stored(False, key, reason=f"value of {len(body)} bytes is over {MAX_VALUE_BYTES}")
    entry = Entry.new(
        body,
        ttl_s=decision.ttl_seconds,
        app_id=call.app_id,
        workflow_id=call.workflow_id,
        node_id=call.node_id,
        node_type=call.node_type,
        elapsed_ms=elapsed_ms,
        cost=cost,
    )
    backend.set(tenant_id, key, entry)
    if isinstance(backend, LeaseBackend):
        backend.release_lease(tenant_id, key)  # waiters find the entry now
    if counters is not None:
        counters.count(*at, stores=1)
    return Stored(True, key, entry.expires_at_us)
