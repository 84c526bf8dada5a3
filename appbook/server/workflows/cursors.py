"""Named cursors in ``appbook_cursors``: where a consumer got to, kept across restarts.

The trigger service keeps the last outbox seq it dispatched and, per cron workflow, the
last due time it fired. A value is any JSON; writes are upserts in one transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..db import exclusive_lock, read_transaction, write_transaction
from ..systables import CURSORS, utcnow

__all__ = ["read_cursor", "read_cursors", "write_cursor", "write_cursors"]


def read_cursor(engine: Engine, name: str) -> Any:
    """The value of cursor ``name``, or None if it was never written."""
    with read_transaction(engine) as conn:
        return conn.execute(sa.select(CURSORS.c.value).where(CURSORS.c.name == name)).scalar()


def read_cursors(engine: Engine, prefix: str) -> dict[str, Any]:
    """Every cursor whose name starts with ``prefix``, by name (one query for a sweep)."""
    query = sa.select(CURSORS.c.name, CURSORS.c.value).where(CURSORS.c.name.startswith(prefix))
    with read_transaction(engine) as conn:
        return {row.name: row.value for row in conn.execute(query)}


def write_cursor(engine: Engine, name: str, value: Any) -> None:
    """Set cursor ``name`` to ``value`` (created if missing)."""
    with write_transaction(engine) as conn:
        upsert(conn, name, value)


def write_cursors(engine: Engine, values: dict[str, Any]) -> None:
    """Set several cursors in one transaction."""
    with write_transaction(engine) as conn:
        for name, value in sorted(values.items()):  # one order: no deadlock between writers
            upsert(conn, name, value)


def upsert(conn: Connection, name: str, value: Any) -> None:
    """Set cursor ``name`` in ``conn``'s write transaction."""
    exclusive_lock(conn, f"appbook.cursor:{name}")  # two first writers must not both insert
    now = utcnow()
    done = conn.execute(
        CURSORS.update().where(CURSORS.c.name == name).values(value=value, updated_at=now)
    )
    if not done.rowcount:
        conn.execute(CURSORS.insert().values(name=name, value=value, updated_at=now))
