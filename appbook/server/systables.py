"""The engine's own tables (``appbook_*``), as SQLAlchemy 2 typed models.

Alembic migrations in ``appbook/server/migrations`` create and evolve these; component
record tables are built separately from definitions (see :mod:`appbook.server.tables`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

SYSTEM_PREFIX = "appbook_"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BIGINT keys everywhere, except SQLite where only INTEGER PRIMARY KEY aliases the rowid.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the system tables."""


class Publication(Base):
    """One immutable publication: the definitions in force from ``number`` on."""

    __tablename__ = "appbook_publications"

    number: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))  # publish | rollback
    content_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    definitions: Mapped[dict[str, Any]] = mapped_column(JSONType)
    migration: Mapped[list[str]] = mapped_column(JSONType)
    note: Mapped[str] = mapped_column(sa.Text, default="")
    # component -> {path: sha256 in appbook_sources}: notebooks and scripts published with it
    sources: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


class Event(Base):
    """The outbox: one row per record write, in the write's transaction."""

    __tablename__ = "appbook_events"
    __table_args__ = (sa.Index("ix_appbook_events_component_seq", "component", "seq"),)

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    component: Mapped[str] = mapped_column(sa.String(100))
    record_id: Mapped[int] = mapped_column(sa.BigInteger)
    op: Mapped[str] = mapped_column(sa.String(10))  # create | update | delete
    changed: Mapped[list[str]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(sa.Integer)
    actor: Mapped[str] = mapped_column(sa.String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StoredFile(Base):
    """Metadata of a file in the file store; the bytes live in the store, encrypted."""

    __tablename__ = "appbook_files"
    __table_args__ = (sa.Index("ix_appbook_files_folder", "folder", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    folder: Mapped[str] = mapped_column(sa.String(255), default="")
    size: Mapped[int] = mapped_column(sa.BigInteger)
    media_type: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = mapped_column(sa.String(64))
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A person (or service) known to Appbook, with roles that workflows and, later, access
    rules refer to. Authentication stays with jupyter_server's identity provider; the name
    is the one it reports."""

    __tablename__ = "appbook_users"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    display_name: Mapped[str] = mapped_column(sa.String(200), default="")
    email: Mapped[str] = mapped_column(sa.String(320), default="")
    roles: Mapped[list[str]] = mapped_column(JSONType)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200))


class Run(Base):
    """One run of a workflow: a persistent state machine, one transaction per transition."""

    __tablename__ = "appbook_runs"
    __table_args__ = (
        sa.Index("ix_appbook_runs_status_wake", "status", "wake_at"),
        sa.Index("ix_appbook_runs_workflow", "component", "workflow", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    component: Mapped[str] = mapped_column(sa.String(100))
    workflow: Mapped[str] = mapped_column(sa.String(100))
    record_id: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    # queued | running | waiting | succeeded | failed | cancelled | timed_out
    status: Mapped[str] = mapped_column(sa.String(20))
    step: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)  # the next to run
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONType)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONType)  # step name -> its outputs
    error: Mapped[str] = mapped_column(sa.Text, default="")
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # manual | cron | event | webhook
    trigger: Mapped[str] = mapped_column(sa.String(20), default="manual")
    # unique per firing (cron due time, outbox seq, webhook delivery): a trigger fires once
    trigger_key: Mapped[str | None] = mapped_column(sa.String(200), nullable=True, unique=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StepRun(Base):
    """One attempt at one step of a run."""

    __tablename__ = "appbook_step_runs"
    __table_args__ = (sa.Index("ix_appbook_step_runs_run", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("appbook_runs.id"))
    step: Mapped[str] = mapped_column(sa.String(100))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    # running | waiting (an approval) | succeeded | failed | cancelled (its run was cancelled)
    status: Mapped[str] = mapped_column(sa.String(20))
    # ``run:step:attempt``, unique: this one attempt. Handlers key side effects on
    # ``StepCall.idempotency_key`` (``run:step:visit``) instead, the same across attempts,
    # so a step retried after a crash can tell it already acted.
    idempotency_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONType)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    traceback: Mapped[str] = mapped_column(sa.Text, default="")
    notebook_file: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)  # executed


class Source(Base):
    """A notebook or script published with definitions, stored once by content hash."""

    __tablename__ = "appbook_sources"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Cursor(Base):
    """Where a consumer got to (an outbox seq, a cron tick), kept across restarts."""

    __tablename__ = "appbook_cursors"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lease(Base):
    """A named job held by one process until ``until`` (cron firing, trigger dispatch)."""

    __tablename__ = "appbook_leases"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(200))
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class Secret(Base):
    """A secret for an outside service, encrypted with the file store's key ring."""

    __tablename__ = "appbook_secrets"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    value: Mapped[bytes] = mapped_column(sa.LargeBinary)
    key_id: Mapped[str] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(200))


class DataflowRun(Base):
    """One run of a dataflow (succeeded or failed): who, when, how long, items per step."""

    __tablename__ = "appbook_dataflow_runs"
    __table_args__ = (sa.Index("ix_appbook_dataflow_runs_flow", "component", "dataflow", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    component: Mapped[str] = mapped_column(sa.String(100))
    dataflow: Mapped[str] = mapped_column(sa.String(100))
    actor: Mapped[str] = mapped_column(sa.String(200))
    via: Mapped[str] = mapped_column(sa.String(20))  # python | rest | workflow | kernel
    status: Mapped[str] = mapped_column(sa.String(20))  # succeeded | failed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[float] = mapped_column(sa.Float)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # stage, step, kind, in, out
    error: Mapped[str] = mapped_column(sa.Text, default="")


SYSTEM_METADATA = Base.metadata
PUBLICATIONS = cast(sa.Table, Publication.__table__)
EVENTS = cast(sa.Table, Event.__table__)
FILES = cast(sa.Table, StoredFile.__table__)
USERS = cast(sa.Table, User.__table__)
RUNS = cast(sa.Table, Run.__table__)
STEP_RUNS = cast(sa.Table, StepRun.__table__)
SOURCES = cast(sa.Table, Source.__table__)
CURSORS = cast(sa.Table, Cursor.__table__)
LEASES = cast(sa.Table, Lease.__table__)
SECRETS = cast(sa.Table, Secret.__table__)
DATAFLOW_RUNS = cast(sa.Table, DataflowRun.__table__)
