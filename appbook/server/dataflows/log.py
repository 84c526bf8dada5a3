"""The run log of dataflows (``appbook_dataflow_runs``): one row per run, written after the
run's own transaction ends, so a failed run is logged although its writes rolled back."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..db import read_transaction, write_transaction
from ..systables import DATAFLOW_RUNS

if TYPE_CHECKING:
    from ..engine import Appbook

MAX_ERROR = 4000


def log_run(
    app: Appbook,
    component: str,
    dataflow: str,
    via: str,
    started: float,
    wall: float,
    steps: list[dict[str, Any]],
    error: str | None,
) -> int:
    """Store one run; its id."""
    from datetime import UTC, datetime

    row = {
        "component": component,
        "dataflow": dataflow,
        "actor": app.actor,
        "via": via,
        "status": "failed" if error else "succeeded",
        "started_at": datetime.fromtimestamp(started, UTC),
        "duration_ms": round((time.perf_counter() - wall) * 1000, 3),
        "steps": steps,
        "error": (error or "")[:MAX_ERROR],
    }
    with write_transaction(app.engine) as conn:
        inserted = conn.execute(DATAFLOW_RUNS.insert().values(**row)).inserted_primary_key
    return int(inserted[0]) if inserted is not None else 0


def runs(
    app: Appbook,
    component: str,
    dataflow: str,
    *,
    before: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The dataflow's runs, newest first (``before``: an id, for the next page)."""
    table = DATAFLOW_RUNS
    stmt = sa.select(table).where(table.c.component == component, table.c.dataflow == dataflow)
    if before is not None:
        stmt = stmt.where(table.c.id < before)
    stmt = stmt.order_by(table.c.id.desc()).limit(limit)
    with read_transaction(app.engine) as conn:
        return [_shown(dict(r)) for r in conn.execute(stmt).mappings()]


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    row["started_at"] = row["started_at"].isoformat()
    return row
