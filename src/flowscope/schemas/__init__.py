"""Wire schemas: what crosses the API and the SDK, separate from the tables."""

from flowscope.schemas.common import Page
from flowscope.schemas.keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Role
from flowscope.schemas.runs import (
    CostSource,
    IngestResult,
    NodeExecutionCreate,
    NodeExecutionPublic,
    NodeStatus,
    RunBatchCreate,
    RunCreate,
    RunPublic,
    RunStatus,
    RunSummaryPublic,
)

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "CostSource",
    "IngestResult",
    "NodeExecutionCreate",
    "NodeExecutionPublic",
    "NodeStatus",
    "Page",
    "Role",
    "RunBatchCreate",
    "RunCreate",
    "RunPublic",
    "RunStatus",
    "RunSummaryPublic",
]
