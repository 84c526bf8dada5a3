"""The engine's own schema: check it at start-up, upgrade it with Alembic.

A new database is brought to the current revision automatically. A database made by an
older Appbook is not changed behind the operator's back: opening it raises an error that
names the fix (``appbook db upgrade``).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .db import exclusive_lock, translate_unavailable, write_transaction
from .errors import AppbookError

HEAD = "0005"  # tests check this against the migration scripts
VERSION_TABLE = "appbook_alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaOutdated(AppbookError):
    """The database was made by another Appbook version."""

    code = "schema_outdated"


def current_revision(conn: Connection) -> str | None:
    """The Alembic revision the database is at (``None`` for a new database)."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    row = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return None if row is None else str(row[0])


def ensure_schema(engine: Engine) -> None:
    """Make sure the system tables are current; create them on a new database."""
    with translate_unavailable(engine), engine.connect() as conn:
        revision = current_revision(conn)
        conn.rollback()
    if revision == HEAD:
        return
    if revision is not None:
        where = engine.url.render_as_string(hide_password=True)
        raise SchemaOutdated(
            f"database {where} is at schema revision {revision}, this Appbook needs {HEAD}; "
            "run `appbook db upgrade` (back up the database first)"
        )
    upgrade(engine)


def upgrade(engine: Engine) -> str:
    """Run the Alembic migrations up to :data:`HEAD`; returns the revision reached."""
    from alembic import command
    from alembic.config import Config

    with write_transaction(engine) as conn:
        exclusive_lock(conn, "appbook.schema")
        if current_revision(conn) != HEAD:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    return HEAD
