"""Wire schemas of API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from flowscope.limits import MAX_ID

Role = Literal["ingest", "read", "admin"]


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_ID)
    role: Role


class ApiKeyPublic(BaseModel):
    id: int
    tenant: str
    name: str
    role: Role
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The secret itself. Shown once; only its hash is stored.")
