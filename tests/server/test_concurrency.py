"""Several processes writing one database: no lost update, no "database is locked"."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa

from appbook.server.config import EngineConfig
from appbook.server.db import write_transaction
from appbook.server.engine import Appbook
from appbook.server.errors import Conflict

PROCESSES = 8
INCREMENTS = 100
COUNTER = "name: counters\nfields:\n  name: {type: string, unique: true}\n  n: {type: integer}\n"


def _raw_increments(args: tuple[str, str, int]) -> int:
    """Read-modify-write inside one write transaction, the pattern that loses updates when
    reads run outside the transaction (FOR UPDATE for PostgreSQL; SQLite's BEGIN IMMEDIATE
    already holds the write lock)."""
    home, url, record_id = args
    errors = 0
    with Appbook(EngineConfig.from_values(home=home, database_url=url)) as app:
        table = app.registry.get("counters").table
        for _ in range(INCREMENTS):
            try:
                with write_transaction(app.engine) as conn:
                    n = conn.execute(
                        sa.select(table.c.n).where(table.c.id == record_id).with_for_update()
                    ).scalar_one()
                    conn.execute(table.update().where(table.c.id == record_id).values(n=n + 1))
            except sa.exc.OperationalError:
                errors += 1
    return errors


def _api_increments(args: tuple[str, str, int]) -> int:
    """get + update(version=...) with retry on Conflict: optimistic concurrency."""
    home, url, record_id = args
    conflicts = 0
    with Appbook(EngineConfig.from_values(home=home, database_url=url)) as app:
        counters = app["counters"]
        done = 0
        while done < INCREMENTS:
            rec = counters.get(record_id)
            try:
                counters.update(record_id, {"n": rec["n"] + 1}, version=rec["version"])
                done += 1
            except Conflict:
                conflicts += 1
    return conflicts


@pytest.mark.slow
@pytest.mark.parametrize(
    "worker", [_raw_increments, _api_increments], ids=["transaction", "versions"]
)
def test_no_lost_updates_across_processes(
    app: Appbook, tmp_path: Path, database_url: str, worker: object
) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "counters.component.yaml").write_text(COUNTER)
    app.publish(folder)
    rec = app["counters"].create({"name": "c", "n": 0})
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.map(worker, [(str(tmp_path / "home"), database_url, rec["id"])] * PROCESSES)  # type: ignore[arg-type]
    final = app["counters"].get(rec["id"])["n"]
    assert final == PROCESSES * INCREMENTS
    if worker is _raw_increments:
        assert results == [0] * PROCESSES  # no "database is locked" errors
