"""The outbox table ``appbook_events``: append in a write transaction, read by sequence.

Subscribers rely on one invariant: **sequence order is commit order**. Then a reader that
has seen every event up to ``seq`` N at some snapshot never sees a new event ≤ N later, so
catching up "after N" misses nothing. SQLite gives this for free (one writer at a time, the
row id assigned under the write lock). On PostgreSQL a sequence value is taken at insert and
transactions commit in any order, so :func:`append_event` first takes a transaction-scoped
advisory lock: outbox inserts queue until the previous writer commits. Insert events last
in a write transaction to keep that lock short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..db import exclusive_lock, read_transaction
from ..systables import Event, utcnow
from .model import OPERATIONS, RecordEvent, as_utc

EVENTS = cast(sa.Table, Event.__table__)
OUTBOX_LOCK = "appbook.events"


def append_event(
    conn: Connection,
    *,
    component: str,
    record_id: int,
    op: str,
    changed: Sequence[str],
    version: int,
    actor: str,
    at: datetime | None = None,
) -> RecordEvent:
    """Insert one event in ``conn``'s (write) transaction; returns it with its ``seq``.

    Publish the returned events only after the transaction commits.
    """
    if op not in OPERATIONS:
        raise ValueError(f"event op must be one of {sorted(OPERATIONS)}, not {op!r}")
    exclusive_lock(conn, OUTBOX_LOCK)
    event = RecordEvent(
        seq=0,
        component=component,
        record_id=record_id,
        op=op,
        changed=tuple(changed),
        version=version,
        actor=actor,
        at=as_utc(at or utcnow()),
    )
    values = {k: v for k, v in event.to_dict().items() if k != "seq"}
    values["at"] = event.at
    seq = conn.execute(sa.insert(EVENTS).values(**values).returning(EVENTS.c.seq)).scalar_one()
    return replace(event, seq=int(seq))


def read_outbox(
    engine: Engine, since: int, component: str | None = None, limit: int = 1000
) -> list[RecordEvent]:
    """Up to ``limit`` events with ``seq > since`` (of ``component`` if given), ascending."""
    with read_transaction(engine) as conn:
        return select_events(conn, since, component=component, limit=limit)


def last_seq(engine: Engine) -> int:
    """The highest ``seq`` in the outbox, 0 when it is empty."""
    with read_transaction(engine) as conn:
        return high_water(conn)


def read_page(
    engine: Engine,
    since: int,
    component: str | None = None,
    limit: int = 1000,
    until: int | None = None,
) -> tuple[list[RecordEvent], int]:
    """Like :func:`read_outbox` (up to ``until`` if given), plus the snapshot's highest seq."""
    with read_transaction(engine) as conn:
        events = select_events(conn, since, component=component, limit=limit, until=until)
        return events, high_water(conn)


def select_events(
    conn: Connection,
    since: int,
    *,
    component: str | None = None,
    limit: int = 1000,
    until: int | None = None,
) -> list[RecordEvent]:
    """Events with ``since < seq`` (and ``seq <= until`` if given), ascending, on ``conn``."""
    query = sa.select(EVENTS).where(EVENTS.c.seq > since).order_by(EVENTS.c.seq).limit(limit)
    if component is not None:
        query = query.where(EVENTS.c.component == component)
    if until is not None:
        query = query.where(EVENTS.c.seq <= until)
    return [RecordEvent.from_row(row) for row in conn.execute(query)]


def high_water(conn: Connection) -> int:
    """The highest ``seq`` visible on ``conn``, 0 when the outbox is empty."""
    return int(conn.execute(sa.select(sa.func.max(EVENTS.c.seq))).scalar() or 0)
