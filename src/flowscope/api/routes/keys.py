"""API key management within the caller's tenant (admin keys only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Response

from flowscope.api.body import refuse_nul_in_body
from flowscope.api.deps import DbEngine, IsAdmin, RowId
from flowscope.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Page
from flowscope.store.engine import read_transaction, write_transaction
from flowscope.tenancy import keys

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], dependencies=[Depends(refuse_nul_in_body)])


@router.get("", response_model=Page[ApiKeyPublic], summary="The tenant's keys (never secrets)")
def list_keys(principal: IsAdmin, engine: DbEngine) -> Page[ApiKeyPublic]:
    with read_transaction(engine) as conn:
        found = keys.read_keys(conn, principal.tenant)
    return Page[ApiKeyPublic](data=found, next_cursor=None)


@router.post(
    "", response_model=ApiKeyCreated, status_code=201, summary="Create a key; the secret shows once"
)
def create_key(body: ApiKeyCreate, principal: IsAdmin, engine: DbEngine) -> ApiKeyCreated:
    with write_transaction(engine) as conn:
        return keys.create_key(conn, principal.tenant, body.name, body.role)


@router.delete("/{key_id}", status_code=204, summary="Revoke a key")
def revoke_key(key_id: RowId, principal: IsAdmin, engine: DbEngine) -> Response:
    with write_transaction(engine) as conn:
        if not keys.revoke_key(conn, key_id, principal.tenant_id):
            raise HTTPException(404, f"no live key {key_id} in this tenant")
    return Response(status_code=204)
