"""Alembic environment: runs on the connection handed over by :mod:`appbook.server.schema`."""

from __future__ import annotations

from alembic import context

from appbook.server.systables import SYSTEM_METADATA

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SYSTEM_METADATA,
    version_table="appbook_alembic_version",
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
