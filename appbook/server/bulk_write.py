"""Writing many validated rows fast: keys allocated up front, then COPY or executemany.

``INSERT … RETURNING`` in batches made PostgreSQL's driver re-parse every huge statement and
SQLite run one statement per row (bench/README.md). Instead the keys of the records and of
their outbox events are allocated first, under the locks the caller holds, and the rows go
in with ``COPY`` on PostgreSQL or one ``executemany`` on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .records import unique_conflicts
from .registry import Component


def allocate(conn: Connection, table: sa.Table, column: str, count: int) -> list[int]:
    """``count`` new keys for ``table.column``, ascending.

    The caller holds the write lock (SQLite) or the outbox lock; on PostgreSQL the keys come
    from the column's own sequence, so concurrent single writes never collide with them.
    """
    if count == 0:
        return []
    if conn.dialect.name == "postgresql":
        query = sa.text(
            "SELECT array_agg(nextval(pg_get_serial_sequence(:t, :c))) FROM generate_series(1, :n)"
        )
        keys: list[int] = conn.execute(
            query, {"t": table.name, "c": column, "n": count}
        ).scalar_one()
        return sorted(keys)
    top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c[column]), 0))).scalar_one()
    return list(range(top + 1, top + 1 + count))


def insert_rows(
    conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]], comp: Component | None = None
) -> None:
    """Insert ``rows`` (all with the same keys); unique violations become :class:`Conflict`."""
    if not rows:
        return
    with unique_conflicts(comp, "a value") if comp is not None else nullcontext():
        if conn.dialect.name == "postgresql":
            _copy(conn, table, rows)
        else:
            conn.execute(table.insert(), list(rows))


def _copy(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    from psycopg import sql

    columns = list(rows[0])
    as_json = {c for c in columns if isinstance(table.c[c].type, sa.JSON)}
    encoded: dict[int, str] = {}  # rows often share one value object (the events' `changed`)

    def text(value: Any) -> str:
        key = id(value)
        if key not in encoded:
            encoded[key] = json.dumps(value)
        return encoded[key]

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(statement) as copy:
        for row in rows:
            # COPY's text format hands JSON text to the jsonb input parser as it is.
            copy.write_row(
                [text(row[c]) if c in as_json and row[c] is not None else row[c] for c in columns]
            )


def event_rows(
    comp: Component,
    ids: Sequence[int],
    seqs: Sequence[int],
    changed: list[str],
    actor: str,
    at: Any,
) -> list[dict[str, Any]]:
    """Outbox rows for created records."""
    base = {
        "component": comp.name,
        "op": "create",
        "changed": changed,
        "version": 1,
        "actor": actor,
        "at": at,
    }
    return [{**base, "seq": s, "record_id": i} for s, i in zip(seqs, ids, strict=True)]
