"""Settings: one pydantic-settings object, read from FLOWSCOPE_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./flowscope.db"


class Settings(BaseSettings):
    """Everything flowscope can be told. Build one and pass it to `create_app(settings)`."""

    model_config = SettingsConfigDict(env_prefix="FLOWSCOPE_", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the flowscope database: sqlite:///path.db (embedded "
        "default) or postgresql+psycopg://user@host/db (production).",
    )
    host: str = Field("127.0.0.1", description="Interface `flowscope serve` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port `flowscope serve` listens on.")
    max_body_bytes: int = Field(
        10 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted; larger bodies get 413.",
    )
    max_runs_per_request: int = Field(
        10_000, gt=0, description="Most runs one POST /api/v1/runs may carry (422 beyond)."
    )
    page_size_max: int = Field(1000, gt=0, description="Largest `limit` a list endpoint accepts.")
    db_pool_size: int = Field(
        5, gt=0, description="Connections each server process keeps open to PostgreSQL."
    )
    auto_migrate: bool = Field(
        True,
        description="Apply migrations to an embedded SQLite database when the server starts "
        "(PostgreSQL is migrated explicitly with `flowscope db upgrade`).",
    )
    cache_url: str = Field(
        "sql://",
        description="Where cached node results live: sql:// (the flowscope database), "
        "memory://?max_entries=10000 (per server process), redis://host:6379/0, or a "
        "separate sqlite:/// or postgresql+psycopg:// URL.",
    )
    cache_timeout_ms: int = Field(
        50,
        gt=0,
        description="A cache lookup or store slower than this is a miss or is dropped, and "
        "counted as an error: the cache never holds a workflow up.",
    )
    cache_ttl_seconds: dict[str, int] = Field(
        default_factory=dict,
        description="Default cache TTLs by node type, over the built-in ones (llm 86400, "
        "knowledge-retrieval 3600, http-request 300, others 3600), as JSON, e.g. "
        '{"llm": 3600}. Workflow and node policies override these.',
    )
    advisor_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Advisor thresholds over the defaults, as JSON, e.g. "
        '{"min_executions": 50, "error_rate": 0.02}; every name is listed in docs/advisor.md.',
    )
    critical_path_tolerance_ms: float = Field(
        1.0,
        ge=0,
        le=60_000,
        description="How far a recorded end may fall after the recorded start of what waited "
        "for it and still count as a dependency in critical paths (clock rounding and skew); "
        "1 ms covers microsecond rounding and millisecond timestamps, engines that record "
        "whole seconds need 1000.",
    )
    metrics_public: bool = Field(
        False,
        description="Serve GET /metrics without a key, with every tenant's figures (for a "
        "Prometheus on a private network); otherwise it takes a read key and shows its tenant.",
    )
    otlp_queue_limit: int = Field(
        32,
        ge=0,
        description="OTLP export requests (POST /v1/traces and gRPC) that may wait for a write "
        "slot per server process; beyond it they get 429 with Retry-After (gRPC: "
        "RESOURCE_EXHAUSTED with RetryInfo), and OTLP exporters retry later.",
    )
    otlp_grpc_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Also receive OTLP traces over gRPC (TraceService/Export) on this TCP port "
        "of `host`, e.g. 4317, the OTLP/gRPC default; unset: off.",
    )
    otlp_span_retention_hours: float = Field(
        24,
        gt=0,
        description="How long received OTLP spans are kept to merge a trace's late spans into "
        "its run; the runs themselves stay.",
    )
    session_hours: float = Field(
        12,
        gt=0,
        description="How long a dashboard sign-in lasts before the key must be pasted again "
        "(revoking the key ends its sessions at once).",
    )
    log_level: str = Field(
        "info", description="Log level of `flowscope serve`: critical, error, warning, info, debug."
    )
