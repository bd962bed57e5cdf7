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
    MetaData,
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
    __tablename__ = "workflow_runs"
    __table_args__ = (
        Index(
            "ix_workflow_runs_workflow_pk_started_at_us_id", "workflow_pk", "started_at_us", "id"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(255), unique=True)
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


metadata = Base.metadata
