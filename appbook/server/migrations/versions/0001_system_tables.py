"""System tables: publications, the event outbox, stored files.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from appbook.server.systables import BigId, JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appbook_publications",
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("definitions", JSONType, nullable=False),
        sa.Column("migration", JSONType, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_appbook_publications_content_hash", "appbook_publications", ["content_hash"]
    )
    op.create_table(
        "appbook_events",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("component", sa.String(100), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("op", sa.String(10), nullable=False),
        sa.Column("changed", JSONType, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_appbook_events_component_seq", "appbook_events", ["component", "seq"])
    op.create_table(
        "appbook_files",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("folder", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_appbook_files_folder", "appbook_files", ["folder", "created_at"])


def downgrade() -> None:
    op.drop_table("appbook_files")
    op.drop_table("appbook_events")
    op.drop_table("appbook_publications")
