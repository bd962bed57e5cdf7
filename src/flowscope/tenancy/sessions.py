"""Dashboard sessions: a random token in an HttpOnly cookie, standing for one API key.

Only the token's SHA-256 is stored. A session lives as long as its key is not revoked and
its expiry has not passed; signing out deletes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Connection, delete, insert, select

from flowscope.store.tables import ApiKey, Tenant, WebSession
from flowscope.tenancy.keys import Principal
from flowscope.timeutil import now_us


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(conn: Connection, key_id: int, lifetime_s: float) -> str:
    """A new session for the key; returns the token for the cookie (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    now = now_us()
    conn.execute(
        insert(WebSession).values(
            token_hash=_hash(token),
            key_id=key_id,
            created_at_us=now,
            expires_at_us=now + int(lifetime_s * 1_000_000),
        )
    )
    conn.execute(delete(WebSession).where(WebSession.expires_at_us < now))  # housekeeping
    return token


def read_session(conn: Connection, token: str) -> Principal | None:
    """The principal of a live session: unexpired, its key not revoked; else None."""
    row = conn.execute(
        select(ApiKey.id, ApiKey.tenant_id, Tenant.name, ApiKey.role, ApiKey.name)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .join(WebSession, WebSession.key_id == ApiKey.id)
        .where(
            WebSession.token_hash == _hash(token),
            WebSession.expires_at_us > now_us(),
            ApiKey.revoked_at_us.is_(None),
        )
    ).first()
    if row is None:
        return None
    key_id, tenant_id, tenant, role, name = row
    return Principal(key_id, tenant_id, tenant, role, name)


def delete_session(conn: Connection, token: str) -> None:
    conn.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


def csrf_token(token: str) -> str:
    """The form token of a session: derived from its secret, so it needs no storage."""
    return hmac.new(token.encode(), b"flowscope-csrf", hashlib.sha256).hexdigest()


def csrf_valid(token: str, submitted: str) -> bool:
    return hmac.compare_digest(csrf_token(token), submitted)
