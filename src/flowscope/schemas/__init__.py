"""Wire schemas: what crosses the API and the SDK, separate from the tables."""

from flowscope.schemas.common import Page
from flowscope.schemas.keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Role
from flowscope.schemas.runs import (
    RUN_BATCH_CREATE,
    RUN_CREATE,
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
    "RUN_BATCH_CREATE",
    "RUN_CREATE",
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
