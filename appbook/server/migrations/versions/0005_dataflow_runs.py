"""The run log of dataflows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from appbook.server.systables import BigId, JSONType, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appbook_dataflow_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("component", sa.String(100), nullable=False),
        sa.Column("dataflow", sa.String(100), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("via", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("steps", JSONType, nullable=False),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index(
        "ix_appbook_dataflow_runs_flow", "appbook_dataflow_runs", ["component", "dataflow", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_appbook_dataflow_runs_flow", table_name="appbook_dataflow_runs")
    op.drop_table("appbook_dataflow_runs")
