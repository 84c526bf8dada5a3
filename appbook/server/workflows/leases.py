"""Named leases over ``appbook_leases``: one holder at a time for a job such as cron firing.

Several ``appbook serve`` replicas share one database; each calls :func:`acquire` before a
pass of a job and goes on only if it holds the lease. The holder renews it on every pass;
if it stops cleanly it :func:`release`\\ s the lease and another replica takes over on its
next pass, and if it dies the lease runs out after ``seconds`` and the same happens.

One write transaction decides: on SQLite ``BEGIN IMMEDIATE`` already excludes every other
writer; on PostgreSQL a transaction-scoped advisory lock on the lease's name keeps two
replicas from both inserting a first row (or both seeing it expired) at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..db import exclusive_lock, read_transaction, write_transaction
from ..systables import LEASES, utcnow

__all__ = ["acquire", "holder", "release"]


def acquire(
    engine: Engine, name: str, owner: str, seconds: float, *, now: datetime | None = None
) -> bool:
    """Take or renew lease ``name`` for ``owner`` until ``now + seconds``; True if ``owner``
    holds it now, False if another owner holds it under a lease that has not run out."""
    moment = now or utcnow()
    until = moment + timedelta(seconds=seconds)
    with write_transaction(engine) as conn:
        exclusive_lock(conn, f"appbook.lease:{name}")
        row = conn.execute(
            sa.select(LEASES.c.owner, LEASES.c.until).where(LEASES.c.name == name)
        ).first()
        if row is None:
            conn.execute(LEASES.insert().values(name=name, owner=owner, until=until))
            return True
        if row.owner != owner and row.until > moment:
            return False
        conn.execute(LEASES.update().where(LEASES.c.name == name).values(owner=owner, until=until))
        return True


def release(engine: Engine, name: str, owner: str) -> bool:
    """Give lease ``name`` up if ``owner`` holds it (True), so another owner need not wait
    for it to run out; False when someone else holds it (or nobody)."""
    with write_transaction(engine) as conn:
        result = conn.execute(LEASES.delete().where(LEASES.c.name == name, LEASES.c.owner == owner))
        return bool(result.rowcount)


def holder(engine: Engine, name: str, *, now: datetime | None = None) -> str | None:
    """Who holds lease ``name`` under a live lease at ``now``, or None."""
    moment = now or utcnow()
    with read_transaction(engine) as conn:
        row = conn.execute(
            sa.select(LEASES.c.owner, LEASES.c.until).where(LEASES.c.name == name)
        ).first()
    return None if row is None or row.until <= moment else str(row.owner)
