"""Keys are stored only as hashes, revocation is immediate, last use is recorded."""

from __future__ import annotations

from sqlalchemy import Engine, select

from flowscope.store.engine import read_transaction, write_transaction
from flowscope.store.tables import ApiKey
from flowscope.tenancy import keys


def test_only_the_hash_is_stored(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        created = keys.create_key(conn, "acme", "ingest", "ingest")
    assert created.key.startswith("fsk_")
    assert len(created.key) > 40
    with read_transaction(engine) as conn:
        rows = conn.execute(select(*ApiKey.__table__.c)).all()
    assert len(rows) == 1
    stored = " ".join(str(v) for v in rows[0])
    assert created.key not in stored
    assert rows[0].key_hash == keys.hash_key(created.key)
    assert rows[0].key_hash != keys.hash_key(created.key + "x")


def test_authenticate_and_revoke(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        first = keys.create_key(conn, "acme", "a", "read")
        second = keys.create_key(conn, "acme", "b", "admin")
    with read_transaction(engine) as conn:
        found = keys.authenticate(conn, first.key)
    assert found is not None
    principal, stale = found
    assert (principal.tenant, principal.role, stale) == ("acme", "read", True)
    assert principal.may("read") and not principal.may("ingest")
    with write_transaction(engine) as conn:
        keys.touch_key(conn, principal.key_id)
        assert keys.revoke_key(conn, first.id)
        assert not keys.revoke_key(conn, first.id)
    with read_transaction(engine) as conn:
        assert keys.authenticate(conn, first.key) is None
        assert keys.authenticate(conn, second.key) is not None
        assert keys.authenticate(conn, "not-a-key") is None
        listed = {k.name: k for k in keys.read_keys(conn, "acme")}
    assert listed["a"].revoked_at is not None and listed["a"].last_used_at is not None
    assert listed["b"].revoked_at is None


def test_revoke_is_scoped_to_the_tenant(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        acme = keys.create_key(conn, "acme", "a", "admin")
        globex_id = keys.ensure_tenant(conn, "globex")
        assert not keys.revoke_key(conn, acme.id, tenant_id=globex_id)
    with read_transaction(engine) as conn:
        assert keys.authenticate(conn, acme.key) is not None
