"""Apps and workflows known to the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from flowscope import catalog
from flowscope.api.deps import CanRead, DbEngine
from flowscope.schemas import Page
from flowscope.store.engine import read_transaction

router = APIRouter(prefix="/api/v1", tags=["apps"])


class AppPublic(BaseModel):
    app_id: str
    workflow_ids: list[str]


@router.get("/apps", response_model=Page[AppPublic], summary="The tenant's apps and workflows")
def list_apps(principal: CanRead, engine: DbEngine) -> Page[AppPublic]:
    with read_transaction(engine) as conn:
        apps = catalog.read_apps(conn, principal.tenant_id)
    return Page[AppPublic](
        data=[AppPublic(app_id=a, workflow_ids=w) for a, w in apps.items()], next_cursor=None
    )
