"""What running workflows needs: how a run started, executed notebooks, sources published
with definitions, cursors and leases for triggers, and the secret store.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from appbook.server.systables import JSONType, UTCDateTime, utcnow

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appbook_runs") as batch:
        batch.add_column(
            sa.Column("trigger", sa.String(20), nullable=False, server_default="manual")
        )
        batch.add_column(sa.Column("trigger_key", sa.String(200), nullable=True))
        batch.add_column(sa.Column("dispatched_at", UTCDateTime(), nullable=True))
        batch.create_unique_constraint("uq_appbook_runs_trigger_key", ["trigger_key"])
    with op.batch_alter_table("appbook_step_runs") as batch:
        batch.add_column(sa.Column("traceback", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("notebook_file", sa.String(32), nullable=True))
    with op.batch_alter_table("appbook_publications") as batch:
        batch.add_column(sa.Column("sources", JSONType, nullable=True))
    op.create_table(
        "appbook_sources",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "appbook_cursors",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", JSONType, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    # Record-event triggers read the outbox after this cursor: from here on, every event
    # counts (a fresh database from its first event, an older one from its upgrade).
    seq = op.get_bind().execute(sa.text("SELECT MAX(seq) FROM appbook_events")).scalar()
    op.bulk_insert(
        sa.table(
            "appbook_cursors",
            sa.column("name", sa.String),
            sa.column("value", JSONType),
            sa.column("updated_at", UTCDateTime()),
        ),
        [{"name": "triggers.events", "value": {"seq": int(seq or 0)}, "updated_at": utcnow()}],
    )
    op.create_table(
        "appbook_leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "appbook_secrets",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("appbook_secrets")
    op.drop_table("appbook_leases")
    op.drop_table("appbook_cursors")
    op.drop_table("appbook_sources")
    with op.batch_alter_table("appbook_publications") as batch:
        batch.drop_column("sources")
    with op.batch_alter_table("appbook_step_runs") as batch:
        batch.drop_column("notebook_file")
        batch.drop_column("traceback")
    with op.batch_alter_table("appbook_runs") as batch:
        batch.drop_constraint("uq_appbook_runs_trigger_key", type_="unique")
        batch.drop_column("dispatched_at")
        batch.drop_column("trigger_key")
        batch.drop_column("trigger")
