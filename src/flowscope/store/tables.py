"""Every flowscope table, typed, in one module.

Times are stored as integer microseconds since the Unix epoch (UTC): the same on SQLite and
PostgreSQL, cheap to write in bulk, and trivial to bucket (`started_at_us / 3_600_000_000`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Micros = BigInteger


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at_us: Mapped[int] = mapped_column(Micros)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at_us: Mapped[int] = mapped_column(Micros)
    revoked_at_us: Mapped[int | None] = mapped_column(Micros)
    last_used_at_us: Mapped[int | None] = mapped_column(Micros)


class App(Base):
    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("tenant_id", "app_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    app_id: Mapped[str] = mapped_column(String(255))
    created_at_us: Mapped[int] = mapped_column(Micros)


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("app_pk", "workflow_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    app_pk: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(String(255))
    created_at_us: Mapped[int] = mapped_column(Micros)


class WorkflowVersion(Base):
    __tablename__ = "workflow_versions"

    workflow_pk: Mapped[int] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[str] = mapped_column(String(255), primary_key=True)
    first_seen_us: Mapped[int] = mapped_column(Micros)


class WorkflowRun(Base):
    """A run; its id is the client's, unique within its tenant (two tenants may both have a
    run `r1`, and neither learns of the other's)."""

    __tablename__ = "workflow_runs"
    __table_args__ = (
        Index(
            "ix_workflow_runs_workflow_pk_started_at_us_id", "workflow_pk", "started_at_us", "id"
        ),
        UniqueConstraint("tenant_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(255))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    workflow_pk: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    workflow_version: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    # 0 while running or paused, 1 once finished: a report never moves a run backwards.
    status_rank: Mapped[int] = mapped_column(SmallInteger)
    started_at_us: Mapped[int] = mapped_column(Micros)
    finished_at_us: Mapped[int | None] = mapped_column(Micros)
    elapsed_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    triggered_from: Mapped[str | None] = mapped_column(String(255))
    inputs_hash: Mapped[str | None] = mapped_column(String(255))
    reported_total_tokens: Mapped[int | None] = mapped_column(BigInteger)
    # Derived from the stored node executions after every ingest of the run.
    total_tokens: Mapped[int | None] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int | None] = mapped_column(BigInteger)
    completion_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    node_count: Mapped[int] = mapped_column(Integer)
    cache_hits: Mapped[int] = mapped_column(Integer)
    unpriced_node_executions: Mapped[int] = mapped_column(Integer)
    created_at_us: Mapped[int] = mapped_column(Micros)
    updated_at_us: Mapped[int] = mapped_column(Micros)


class NodeExecution(Base):
    """Clustered on (run_pk, id): one B-tree, read back run by run, no secondary index.

    Fields analytics aggregate on are columns; descriptive ones (title, index, predecessor,
    error, iteration and loop membership) are one JSON object in `details`, because every
    bound column costs bulk ingestion about half a microsecond per row.

    `run_pk` is deliberately not a declared foreign key: PostgreSQL checks one with a trigger
    per inserted row, a large share of bulk-ingest time. The ingest path writes the run first
    in the same transaction, and deletes of runs delete their node executions explicitly.
    """

    __tablename__ = "node_executions"
    __table_args__ = {"sqlite_with_rowid": False}

    run_pk: Mapped[int] = mapped_column(BigId, primary_key=True)
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(255))
    node_type: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    started_at_us: Mapped[int] = mapped_column(Micros)
    finished_at_us: Mapped[int | None] = mapped_column(Micros)
    elapsed_ms: Mapped[float | None] = mapped_column(Float)
    model_provider: Mapped[str | None] = mapped_column(String(255))
    model_name: Mapped[str | None] = mapped_column(String(255))
    prompt_tokens: Mapped[int | None] = mapped_column(BigInteger)
    completion_tokens: Mapped[int | None] = mapped_column(BigInteger)
    total_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    cost_source: Mapped[str] = mapped_column(String(16))
    cache_hit: Mapped[bool] = mapped_column(Boolean)
    input_hash: Mapped[str | None] = mapped_column(String(255))
    retry_count: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[str | None] = mapped_column(Text)


_ROLLUP_KEY = (
    "workflow_pk",
    "span_us",
    "scope",
    "bucket_start_us",
    "workflow_version",
    "triggered_from",
)


class _Rollup:
    """Figures of the runs that started in one hour (span_us = 1 hour) or one UTC day.

    Keyed by workflow, span, scope, bucket start, version and trigger ('' for none), so every
    filter of the analytics endpoints reads rollups only. Scope 0 rows hold the runs of one
    version and trigger; scope 1 rows (version and trigger '') hold all runs, so a query
    without filters reads one row per bucket, whatever the number of versions and triggers.
    Maintained by ingestion with additive upserts (see flowscope.rollups). `lat_hist` is a
    JSON object of counts by logarithmic bucket key (analytics/sketch.py), merged by the
    `flowscope_hist_add` SQL function; `lat_min_ms`/`lat_max_ms` only ever widen, and readers
    check them against the histogram.
    """

    workflow_pk: Mapped[int] = mapped_column(BigId, primary_key=True)
    span_us: Mapped[int] = mapped_column(Micros, primary_key=True)
    scope: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    bucket_start_us: Mapped[int] = mapped_column(Micros, primary_key=True)
    workflow_version: Mapped[str] = mapped_column(String(255), primary_key=True)
    triggered_from: Mapped[str] = mapped_column(String(255), primary_key=True)
    lat_count: Mapped[int] = mapped_column(BigInteger)
    lat_sum_ms: Mapped[float] = mapped_column(Float)
    lat_min_ms: Mapped[float | None] = mapped_column(Float)
    lat_max_ms: Mapped[float | None] = mapped_column(Float)
    lat_hist: Mapped[str] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[float] = mapped_column(Float)
    unpriced: Mapped[int] = mapped_column(BigInteger)
    cache_lookups: Mapped[int] = mapped_column(BigInteger)
    cache_hits: Mapped[int] = mapped_column(BigInteger)


class RunRollup(_Rollup, Base):
    """Run figures (`workflow_pk` is not a declared foreign key, as in node_executions)."""

    __tablename__ = "run_rollups"
    __table_args__ = (PrimaryKeyConstraint(*_ROLLUP_KEY), {"sqlite_with_rowid": False})

    runs: Mapped[int] = mapped_column(BigInteger)
    finished: Mapped[int] = mapped_column(BigInteger)
    succeeded: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    node_executions: Mapped[int] = mapped_column(BigInteger)
    analysed_runs: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class NodeRollup(_Rollup, Base):
    """Figures by node id, including the critical path's: the runs in which the node was on
    it (`cp_runs`), its time on it (`cp_us`), the scheduling waits before it there (`wait_us`),
    and what halving it would save (`saving_*`; `saving_hist` holds, per run, +1 at the run's
    duration with the node halved and -1 at its actual duration; `run_saving_hist` holds each
    run's own saving, for runs that would end sooner)."""

    __tablename__ = "node_rollups"
    __table_args__ = (
        PrimaryKeyConstraint(*_ROLLUP_KEY, "node_id"),
        {"sqlite_with_rowid": False},
    )

    node_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    node_type: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(1000))
    executions: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    retries: Mapped[int] = mapped_column(BigInteger)
    cp_runs: Mapped[int] = mapped_column(BigInteger)
    cp_us: Mapped[int] = mapped_column(BigInteger)
    wait_us: Mapped[int] = mapped_column(BigInteger)
    saving_runs: Mapped[int] = mapped_column(BigInteger)
    saving_ms_sum: Mapped[float] = mapped_column(Float)
    saving_hist: Mapped[str] = mapped_column(Text)
    run_saving_hist: Mapped[str] = mapped_column(Text, server_default="{}")


class CacheEntry(Base):
    """One stored node result of the result cache (flowscope.cache.backends.sql).

    Keyed by tenant and cache key, so identical keys in two tenants never share a row.
    `tenant_id` is deliberately not a declared foreign key: entries are disposable, written
    on the request path, and removed by expiry or invalidation. `value` is the serialised
    JSON result; `size` its length in bytes, summed by the stats without reading values.
    """

    __tablename__ = "cache_entries"
    __table_args__ = (
        Index("ix_cache_entries_expires_at_us", "expires_at_us"),
        Index(
            "ix_cache_entries_tenant_id_app_id_workflow_id",
            "tenant_id",
            "app_id",
            "workflow_id",
        ),
    )

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(255))
    workflow_id: Mapped[str] = mapped_column(String(255))
    node_id: Mapped[str] = mapped_column(String(255))
    node_type: Mapped[str] = mapped_column(String(255))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    stored_at_us: Mapped[int] = mapped_column(Micros)
    expires_at_us: Mapped[int] = mapped_column(Micros)
    elapsed_ms: Mapped[float | None] = mapped_column(Float)
    cost: Mapped[float | None] = mapped_column(Float)


class CachePolicyRow(Base):
    """A workflow's cache policy as set through the API (flowscope.cache.policy's JSON form);
    workflows without a row use the defaults."""

    __tablename__ = "cache_policies"

    workflow_pk: Mapped[int] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[str] = mapped_column(Text)
    updated_at_us: Mapped[int] = mapped_column(Micros)


class CacheLease(Base):
    """Single-flight leases of the SQL cache backend: while one is live, others wait for the
    result instead of computing it too. Leases expire on their own (a leader that dies does
    not block anybody for longer than its lease)."""

    __tablename__ = "cache_leases"
    __table_args__ = {"sqlite_with_rowid": False}

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at_us: Mapped[int] = mapped_column(Micros)


class CacheStat(Base):
    """Cache counters by tenant, workflow, node and UTC day, added to by every server process
    (buffered in memory for a few seconds, then one additive upsert per key)."""

    __tablename__ = "cache_stats"
    __table_args__ = {"sqlite_with_rowid": False}

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    app_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    day_us: Mapped[int] = mapped_column(Micros, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    lookups: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(BigInteger)
    # Hits on entries stored without elapsed_ms: they save the node's observed median.
    unmeasured_hits: Mapped[int] = mapped_column(BigInteger)
    stores: Mapped[int] = mapped_column(BigInteger)
    skipped: Mapped[int] = mapped_column(BigInteger)
    time_saved_ms: Mapped[float] = mapped_column(Float)
    cost_saved: Mapped[float] = mapped_column(Float)


class WorkflowGraphRow(Base):
    """A workflow's registered graph (flowscope.graphs), in the neutral JSON form; version ''
    is the graph of every version without its own."""

    __tablename__ = "workflow_graphs"

    workflow_pk: Mapped[int] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True
    )
    workflow_version: Mapped[str] = mapped_column(String(255), primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    dsl_version: Mapped[str | None] = mapped_column(String(32))
    graph: Mapped[str] = mapped_column(Text)
    node_count: Mapped[int] = mapped_column(Integer)
    updated_at_us: Mapped[int] = mapped_column(Micros)


class Recommendation(Base):
    """One advisor recommendation, unique per workflow and fingerprint (rule and nodes), so
    regenerating updates it in place. JSON columns hold the wire shapes of
    flowscope.schemas.advisor; `impact_score` orders the list (docs/advisor.md)."""

    __tablename__ = "recommendations"
    __table_args__ = (UniqueConstraint("workflow_pk", "fingerprint"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workflow_pk: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    title: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str] = mapped_column(Text)
    node_ids: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    estimated_impact: Mapped[str] = mapped_column(Text)
    impact_score: Mapped[float] = mapped_column(Float)
    action_steps: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at_us: Mapped[int] = mapped_column(Micros)
    updated_at_us: Mapped[int] = mapped_column(Micros)
    resolved_at_us: Mapped[int | None] = mapped_column(Micros)
    dismissed_at_us: Mapped[int | None] = mapped_column(Micros)
    dismissed_by: Mapped[str | None] = mapped_column(String(255))
    dismiss_reason: Mapped[str | None] = mapped_column(Text)
    # The impact score when dismissed: it comes back only if the impact grows by half.
    dismissed_impact_score: Mapped[float | None] = mapped_column(Float)


class RecommendationEvent(Base):
    """The audit trail of a recommendation: created, updated, resolved, reopened, dismissed."""

    __tablename__ = "recommendation_events"
    __table_args__ = (Index("ix_recommendation_events_recommendation_id", "recommendation_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recommendation_id: Mapped[int] = mapped_column(
        ForeignKey("recommendations.id", ondelete="CASCADE")
    )
    at_us: Mapped[int] = mapped_column(Micros)
    event: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)


class ImportCursor(Base):
    """Where an import from another system stopped (flowscope.integrations): the last row's
    (created_at, id), the runs imported unfinished (JSON list, re-read each pass) and counts."""

    __tablename__ = "import_cursors"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    position_at_us: Mapped[int | None] = mapped_column(Micros)
    position_id: Mapped[str | None] = mapped_column(String(255))
    unfinished: Mapped[str] = mapped_column(Text)
    imported_runs: Mapped[int] = mapped_column(BigInteger)
    imported_node_executions: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(Micros)


class OtlpSpan(Base):
    """A span received over OTLP, reduced to what the mapping reads (JSON): each request
    rebuilds the runs of the traces it touched from all their stored spans."""

    __tablename__ = "otlp_spans"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    span_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    span: Mapped[str] = mapped_column(Text)
    received_at_us: Mapped[int] = mapped_column(Micros)


class OtlpCall(Base):
    """A model call seen in a received trace, kept to recognise one call reported twice
    across traces (integrations.otlp_duplicates): by usage, time and service."""

    __tablename__ = "otlp_calls"
    __table_args__ = (
        Index("ix_otlp_calls_tenant_id_call_key_start_us", "tenant_id", "call_key", "start_us"),
    )

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    span_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The run's app (the emitting service) and the call's prompt and completion tokens.
    call_key: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(255))
    start_us: Mapped[int] = mapped_column(Micros)
    end_us: Mapped[int] = mapped_column(Micros)
    # The trace is this one call alone (a client library's report of a framework's call).
    lone: Mapped[bool] = mapped_column(Boolean)
    scope: Mapped[str | None] = mapped_column(String(1000))  # the instrumentation
    received_at_us: Mapped[int] = mapped_column(Micros)


class WebSession(Base):
    """A dashboard session: the SHA-256 of the cookie's random token and the key it stands
    for (flowscope.tenancy.sessions)."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_expires_at_us", "expires_at_us"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    created_at_us: Mapped[int] = mapped_column(Micros)
    expires_at_us: Mapped[int] = mapped_column(Micros)


metadata = Base.metadata
