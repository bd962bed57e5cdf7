"""The caller's key, from HTTP headers or gRPC metadata, checked against the database.

One place for what every transport does with a key (the REST API, OTLP/HTTP, OTLP/gRPC);
each turns `KeyRejected` and `NotPermitted` into its own status (401/403,
UNAUTHENTICATED/PERMISSION_DENIED).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy.keys import Principal, authenticate, touch_key

log = logging.getLogger("flowscope.tenancy")


class KeyRejected(Exception):
    """No key, a malformed one, or a key that is unknown or revoked."""


class NotPermitted(Exception):
    """A valid key whose role does not grant what was asked."""


def principal_from_headers(
    engine: Engine, authorization: str | None, api_key: str | None
) -> Principal:
    """The principal of `x-flowscope-api-key: fsk_...`, else of `Authorization: Bearer fsk_...`.

    Opens its own short transactions; raises KeyRejected saying what is wrong.
    """
    if api_key and api_key.strip():
        secret = api_key
    else:
        if not authorization:
            raise KeyRejected(
                "missing API key: send 'Authorization: Bearer fsk_...' or 'x-flowscope-api-key'"
            )
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise KeyRejected("malformed Authorization header: expected 'Bearer fsk_...'")
    with read_transaction(engine) as conn:
        found = authenticate(conn, secret.strip())
    if found is None:
        raise KeyRejected("unknown or revoked API key")
    principal, stale = found
    if stale:
        try:
            with write_transaction(engine) as conn:
                touch_key(conn, principal.key_id)
        except SQLAlchemyError:
            # Bookkeeping only: never fail a request because last-use could not be written.
            log.warning("could not record last use of key %s", principal.key_id, exc_info=True)
    return principal


def require_permission(principal: Principal, permission: str) -> Principal:
    """The principal, if its role grants `permission`; else NotPermitted."""
    if not principal.may(permission):
        raise NotPermitted(
            f"this key's role '{principal.role}' may not {permission}; "
            f"use a key with role '{permission}' or 'admin'"
        )
    return principal
