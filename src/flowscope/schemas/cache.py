"""Wire schemas of the cache endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flowscope.schemas.common import Id, Milliseconds, Money
from flowscope.schemas.performance import WindowPublic


class CacheLookupRequest(BaseModel):
    """A node execution about to run: what decides whether its result is already known."""

    model_config = ConfigDict(extra="forbid")

    app_id: Id
    workflow_id: Id
    node_id: Id
    node_type: Id
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="The node configuration that changes its result (model and every "
        "sampling parameter, prompt, tools, code, URL and method...). See docs/cache.md.",
    )
    inputs: dict[str, Any] = Field(default_factory=dict, description="The resolved inputs.")


class CacheLookupWithLease(CacheLookupRequest):
    lease_ms: int | None = Field(
        None,
        ge=100,
        le=600_000,
        description="On a miss, ask to compute the result while other callers wait: the "
        "answer's `lease` is true for one caller at a time (for this long at most, or until "
        "it stores the result) and false for the others, who should look up again shortly.",
    )


class CacheStoreRequest(CacheLookupRequest):
    value: Any = Field(description="The node's result, any JSON value (at most 1 MB encoded).")
    status: str = Field("succeeded", description="Failed or stopped results are never stored.")
    elapsed_ms: Milliseconds | None = Field(
        None, description="What computing the result took: the time a hit saves."
    )
    cost: Money | None = Field(None, description="What it cost: what a hit saves.")


class CacheLookupResult(BaseModel):
    hit: bool
    key: str | None = Field(description="SHA-256 hex; null when no key could be made.")
    cacheable: bool = Field(description="Whether the policy lets this node be cached.")
    reason: str | None = Field(None, description="Why it is not cacheable.")
    value: Any = None
    expires_at: datetime | None = None
    lease: bool | None = Field(
        None,
        description="When `lease_ms` was given and it is a miss: true, compute and store it; "
        "false, another caller is computing it.",
    )


class CacheStoreResult(BaseModel):
    stored: bool
    key: str | None
    expires_at: datetime | None = None
    reason: str | None = Field(None, description="Why it was not stored.")


class CacheInvalidateRequest(BaseModel):
    """Exactly one selector."""

    model_config = ConfigDict(extra="forbid")

    node_type: str | None = None
    node_id: str | None = None
    key: str | None = None
    all: bool = False


class CacheInvalidated(BaseModel):
    invalidated: int


class CacheCleaned(BaseModel):
    removed: int


class CacheDay(BaseModel):
    date: datetime
    lookups: int
    hits: int
    misses: int
    hit_rate: float | None
    time_saved_ms: float
    cost_saved: float


class CacheStatistics(BaseModel):
    window: WindowPublic
    lookups: int = Field(description="Lookups of cacheable nodes.")
    hits: int
    misses: int
    hit_rate: float | None
    stores: int
    skipped: int = Field(description="Results not stored: over the size limit.")
    errors: int = Field(
        description="Backend faults (lookups taken as misses, stores dropped) in this server "
        "process since it started."
    )
    entries: int = Field(description="Live entries of the workflow now.")
    bytes: int
    time_saved_ms: float = Field(
        description="What the hits saved: the time computing each entry took, as stored."
    )
    cost_saved: float
    daily: list[CacheDay]


class CacheTopNode(BaseModel):
    node_id: str
    lookups: int
    hits: int
    hit_rate: float | None
    time_saved_ms: float
    cost_saved: float


class CacheTopNodes(BaseModel):
    window: WindowPublic
    data: list[CacheTopNode]
