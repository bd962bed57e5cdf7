"""Cache entries in Redis, shared by every server process and host.

Layout (standalone Redis; the Lua scripts touch keys they derive, so not Redis Cluster):

- `flowscope:cache:{tenant}:{key}`: a hash (`v` value, `z` its size, `s`/`e` stored and
  expires µs, `a` app, `w` workflow, `n` node id, `t` node type, `el` elapsed ms, `c`
  cost), expiring natively at the entry's expiry (PEXPIREAT).
- `flowscope:cache:{tenant}:index:{digest}`: a sorted set per (tenant, app, workflow) of
  the keys stored for it, scored by expiry. We keep an index rather than SCAN with a match
  pattern because a SCAN walks the whole keyspace on every invalidation or stats call; the
  index reads just the one workflow. `cleanup` trims members whose entries expired (Redis
  already freed the entries themselves) and counts them; an index left alone goes an hour
  after its last entry.
- `flowscope:cache-lease:{tenant}:{key}`: a single-flight lease, `SET NX PX` with a random
  token, released only by its holder (compare-and-delete).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from typing import cast

import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from flowscope.cache.backends.base import Entry, selector
from flowscope.timeutil import now_us as _now_us

PREFIX = "flowscope:cache:"
INDEX_GRACE_MS = 3_600_000

# Drops the index members that expired by ARGV[1], deleting their entries if they are
# still there (`cleanup` may be asked about a later time than now) and still expired (the
# key may since have been stored again, under another workflow's index).
_CLEANUP = """
local now = tonumber(ARGV[1])
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
    local entry = ARGV[2] .. member
    local expires = redis.call('HGET', entry, 'e')
    if expires and tonumber(expires) <= now then redis.call('DEL', entry) end
end
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend:
    """The cache on a Redis server; every call bounded by `timeout_s`, never retried."""

    def __init__(self, url: str, *, timeout_s: float = 0.05) -> None:
        self.client: redis_py.Redis = redis_py.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._cleanup = self.client.register_script(_CLEANUP)
        self._release = self.client.register_script(_RELEASE)
        self._tokens: dict[tuple[int, str], bytes] = {}
        self._tokens_lock = threading.Lock()

    def get(self, tenant_id: int, key: str) -> Entry | None:
        fields = cast(dict[bytes, bytes], self.client.hgetall(_entry_key(tenant_id, key)))
        if not fields or int(fields[b"e"]) <= _now_us():
            return None
        return _decode(fields)

    def set(self, tenant_id: int, key: str, entry: Entry) -> None:
        expires_ms = entry.expires_at_us // 1_000
        if entry.expires_at_us <= _now_us():
            return
        name = _entry_key(tenant_id, key)
        index = _index_key(tenant_id, entry.app_id, entry.workflow_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(name)  # drop fields (elapsed, cost) the new entry may not have
            pipe.hset(name, mapping=_encode(entry))
            pipe.pexpireat(name, expires_ms)
            pipe.zadd(index, {key: entry.expires_at_us})
            # The index outlives its longest-lived entry by a grace period, so that `cleanup`
            # still finds (and counts) what expired; then it goes by itself.
            index_expires_ms = expires_ms + INDEX_GRACE_MS
            pipe.pexpireat(index, index_expires_ms, nx=True)
            pipe.pexpireat(index, index_expires_ms, gt=True)
            pipe.execute()

    def invalidate(
        self,
        tenant_id: int,
        *,
        app_id: str,
        workflow_id: str,
        node_type: str | None = None,
        node_id: str | None = None,
        key: str | None = None,
        all: bool = False,
    ) -> int:
        column, value = selector(node_type, node_id, key, all)
        index = _index_key(tenant_id, app_id, workflow_id)
        if column == "key" and value is not None:
            members = [value.encode()]
        else:
            members = cast(list[bytes], self.client.zrange(index, 0, -1))
        if not members:
            return 0
        want = {"node_id": 2, "node_type": 3}.get(column)
        with self.client.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hmget(_entry_key(tenant_id, member.decode()), ["a", "w", "n", "t"])
            described = pipe.execute()
        doomed = [
            member
            for member, (a, w, n, t) in zip(members, described, strict=True)
            if a is not None
            and a.decode() == app_id
            and w.decode() == workflow_id
            and (want is None or (a, w, n, t)[want].decode() == value)
        ]
        if not doomed:
            return 0
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*(_entry_key(tenant_id, m.decode()) for m in doomed))
            pipe.zrem(index, *doomed)
            removed, _ = pipe.execute()
        return int(removed)

    def cleanup(self, now_us: int | None = None) -> int:
        now = _now_us() if now_us is None else now_us
        removed = 0
        for index in self.client.scan_iter(match=f"{PREFIX}*:index:*", count=1000, _type="zset"):
            tenant = index.decode().split(":")[2]
            removed += int(self._cleanup(keys=[index], args=[now, f"{PREFIX}{tenant}:"]))
        return removed

    def stats(self, tenant_id: int, app_id: str, workflow_id: str) -> tuple[int, int]:
        now = _now_us()
        index = _index_key(tenant_id, app_id, workflow_id)
        members = cast(list[bytes], self.client.zrangebyscore(index, f"({now}", "+inf"))
        if not members:
            return 0, 0
        with self.client.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hmget(_entry_key(tenant_id, member.decode()), ["a", "w", "e", "z"])
            described = pipe.execute()
        count = size = 0
        for a, w, e, z in described:
            # Entries evicted under memory pressure, or since stored for another workflow.
            if a is None or a.decode() != app_id or w.decode() != workflow_id or int(e) <= now:
                continue
            count += 1
            size += int(z)
        return count, size

    def acquire_lease(self, tenant_id: int, key: str, ttl_ms: int) -> bool:
        token = uuid.uuid4().hex.encode()
        if not self.client.set(_lease_key(tenant_id, key), token, nx=True, px=max(1, ttl_ms)):
            return False
        with self._tokens_lock:
            self._tokens[(tenant_id, key)] = token
        return True

    def release_lease(self, tenant_id: int, key: str) -> None:
        with self._tokens_lock:
            token = self._tokens.pop((tenant_id, key), None)
        if token is not None:
            self._release(keys=[_lease_key(tenant_id, key)], args=[token])

    def close(self) -> None:
        self.client.close()


def _entry_key(tenant_id: int, key: str) -> str:
    return f"{PREFIX}{tenant_id}:{key}"


def _index_key(tenant_id: int, app_id: str, workflow_id: str) -> str:
    # Hashed: app and workflow ids may hold ':' or '*', which would confuse the layout.
    digest = hashlib.sha256(f"{app_id}\x00{workflow_id}".encode()).hexdigest()[:32]
    return f"{PREFIX}{tenant_id}:index:{digest}"


def _lease_key(tenant_id: int, key: str) -> str:
    return f"flowscope:cache-lease:{tenant_id}:{key}"


def _encode(entry: Entry) -> dict[str, bytes | int | float | str]:
    fields: dict[str, bytes | int | float | str] = {
        "v": entry.value,
        "z": entry.size,
        "s": entry.stored_at_us,
        "e": entry.expires_at_us,
        "a": entry.app_id,
        "w": entry.workflow_id,
        "n": entry.node_id,
        "t": entry.node_type,
    }
    if entry.elapsed_ms is not None:
        fields["el"] = repr(entry.elapsed_ms)
    if entry.cost is not None:
        fields["c"] = repr(entry.cost)
    return fields


def _decode(fields: dict[bytes, bytes]) -> Entry:
    elapsed, cost = fields.get(b"el"), fields.get(b"c")
    return Entry(
        value=fields[b"v"],
        stored_at_us=int(fields[b"s"]),
        expires_at_us=int(fields[b"e"]),
        app_id=fields[b"a"].decode(),
        workflow_id=fields[b"w"].decode(),
        node_id=fields[b"n"].decode(),
        node_type=fields[b"t"].decode(),
        elapsed_ms=None if elapsed is None else float(elapsed),
        cost=None if cost is None else float(cost),
    )
