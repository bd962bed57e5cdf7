"""API keys: `fsk_<random>`, stored only as SHA-256 hashes, each bound to a tenant and a role.

The secret has 256 bits of entropy, so a fast hash is enough (as for GitHub tokens): nobody
can guess a preimage, and verification stays one indexed lookup per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from flowscope.schemas.keys import ApiKeyCreated, ApiKeyPublic, Role
from flowscope.store import dialect
from flowscope.store.tables import ApiKey, Tenant
from flowscope.timeutil import from_us, maybe_from_us, now_us

KEY_PREFIX = "fsk_"
ROLES: tuple[Role, ...] = ("ingest", "read", "admin")
# What each role may do; admin may do everything.
_GRANTS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest"}),
    "read": frozenset({"read"}),
    "admin": frozenset({"ingest", "read", "admin"}),
}
_TOUCH_EVERY_US = 60_000_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's tenant, role and name (recorded in audit trails)."""

    key_id: int
    tenant_id: int
    tenant: str
    role: str
    key_name: str = ""

    def may(self, permission: str) -> bool:
        return permission in _GRANTS[self.role]

    @property
    def actor(self) -> str:
        """Who did it, for audit trails: the key's name, or its id when it has none."""
        return self.key_name or f"key {self.key_id}"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def ensure_tenant(conn: Connection, name: str) -> int:
    """The tenant's id, creating the tenant on first use."""
    dialect.insert_ignore(conn, "tenants", ("name", "created_at_us"), ("name",), [(name, now_us())])
    return conn.execute(select(Tenant.id).where(Tenant.name == name)).scalar_one()


def create_key(conn: Connection, tenant: str, name: str, role: Role) -> ApiKeyCreated:
    """A new key for the tenant (created if needed); the secret is in the result only."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    tenant_id = ensure_tenant(conn, tenant)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    created = now_us()
    key_id = conn.execute(
        insert(ApiKey)
        .values(
            tenant_id=tenant_id,
            name=name,
            role=role,
            prefix=secret[:12],
            key_hash=hash_key(secret),
            created_at_us=created,
        )
        .returning(ApiKey.id)
    ).scalar_one()
    public = read_key(conn, key_id)
    assert public is not None
    return ApiKeyCreated(**public.model_dump(), key=secret)


_KEY_COLUMNS = (
    ApiKey.id,
    Tenant.name.label("tenant"),
    ApiKey.name,
    ApiKey.role,
    ApiKey.prefix,
    ApiKey.created_at_us,
    ApiKey.revoked_at_us,
    ApiKey.last_used_at_us,
)


def _public(row: Row[*tuple[Any, ...]]) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        role=row.role,
        prefix=row.prefix,
        created_at=from_us(row.created_at_us),
        revoked_at=maybe_from_us(row.revoked_at_us),
        last_used_at=maybe_from_us(row.last_used_at_us),
    )


def read_key(conn: Connection, key_id: int, tenant_id: int | None = None) -> ApiKeyPublic | None:
    query = select(*_KEY_COLUMNS).join(Tenant).where(ApiKey.id == key_id)
    if tenant_id is not None:
        query = query.where(ApiKey.tenant_id == tenant_id)
    row = conn.execute(query).first()
    return None if row is None else _public(row)


def read_keys(conn: Connection, tenant: str | None = None) -> list[ApiKeyPublic]:
    """Every key (of one tenant, by name), oldest first; secrets are never readable."""
    query = select(*_KEY_COLUMNS).join(Tenant).order_by(ApiKey.id)
    if tenant is not None:
        query = query.where(Tenant.name == tenant)
    return [_public(row) for row in conn.execute(query)]


def revoke_key(conn: Connection, key_id: int, tenant_id: int | None = None) -> bool:
    """Revoke the key (within the tenant, if given); False if there is no such live key."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at_us.is_(None))
        .values(revoked_at_us=now_us())
    )
    if tenant_id is not None:
        stmt = stmt.where(ApiKey.tenant_id == tenant_id)
    return conn.execute(stmt).rowcount == 1


def authenticate(conn: Connection, secret: str) -> tuple[Principal, bool] | None:
    """The principal behind a live key, and whether its last-use time is stale; else None."""
    if not secret.startswith(KEY_PREFIX):
        return None
    row = conn.execute(
        select(
            ApiKey.id,
            ApiKey.tenant_id,
            Tenant.name,
            ApiKey.role,
            ApiKey.last_used_at_us,
            ApiKey.name,
        )
        .join(Tenant)
        .where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at_us.is_(None))
    ).first()
    if row is None:
        return None
    key_id, tenant_id, tenant, role, last_used, name = row
    stale = last_used is None or last_used < now_us() - _TOUCH_EVERY_US
    return Principal(key_id, tenant_id, tenant, role, name), stale


def touch_key(conn: Connection, key_id: int) -> None:
    """Record that the key was used (at most about once a minute, see `authenticate`)."""
    conn.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at_us=now_us()))
