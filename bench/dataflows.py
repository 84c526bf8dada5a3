"""Benchmark of dataflows: a million records through query → map → deferred_update /
apply_deferred in one transaction, next to the same work done with the records API.

Usage (run by hand; see bench/README.md for the figures)::

    .venv/bin/python bench/dataflows.py --backend postgresql --rows 1000000 --peer-rows 20000

The component's table is filled with plain SQL (``INSERT … SELECT generate_series``), not
through Appbook, so filling costs neither time nor memory in the figures. Then:

* ``dataflow``: ``app["items"].run_dataflow("reprice")`` over every record: a keyset query
  in chunks of 1,000, a ``map`` computing the new price, ``deferred_update`` and
  ``apply_deferred`` writing batches of 1,000 (one ``SELECT … FOR UPDATE`` and one
  ``executemany`` a batch), outbox events included, all in one transaction;
* ``records API``: the same change through the plain API a notebook user would write,
  ``query`` pages by cursor and ``update(id, values)`` per record (one transaction each),
  over the first ``--peer-rows`` records (a million would take too long).

Items/s are wall clock; peak RSS is sampled every 20 ms by a thread (psutil) and shown as
the peak above the process's size just before the run (the memory the run itself used).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average, machine, server_version, temporary_database

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook

ITEMS = """\
name: items
fields:
  n:     {type: integer, required: true}
  price: {type: number, min: 0}
  tag:   {type: string, max_length: 20}
"""  # the table fill() writes; bench/files.py adds its own dataflows to it
COMPONENT = (
    ITEMS
    + """\
dataflows:
  reprice:
    stages:
      - name: all
        steps:
          - {name: items, query: {chunk_size: 1000}}
          - {name: dearer, map: {fields: {id: "item.id", price: "item.price * 1.1"}}}
          - {name: queue, deferred_update: {}}
          - {name: write, apply_deferred: {chunk_size: 1000}}
"""
)
DATAFLOW = "dataflow (query → map → deferred_update → apply_deferred)"
RECORDS_API = "records API (query pages + update per record)"


def fill(app: Appbook, rows: int) -> None:
    """``rows`` records written with one SQL statement (no Appbook in the way)."""
    with app.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO items (n, price, tag, created_at, created_by, updated_at, "
                "updated_by, version) SELECT g, (g % 1000) + 0.5, 'tag-' || (g % 7), "
                "CURRENT_TIMESTAMP, 'bench', CURRENT_TIMESTAMP, 'bench', 1 "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": rows},
        )
        conn.execute(sa.text("ANALYZE items"))


def measured(work: Callable[[], int]) -> tuple[int, float, float]:
    """(items, seconds, peak RSS MiB above the start) of ``work``."""
    process = psutil.Process()
    base = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        items = work()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return items, seconds, (peak - base) / 2**20


def by_dataflow(app: Appbook) -> int:
    result = app["items"].run_dataflow("reprice")
    return next(s["out"] for s in result.steps if s["step"] == "write")


def by_records_api(app: Appbook, limit: int) -> int:
    items, cursor, done = app["items"], None, 0
    while done < limit:
        page = items.query(order_by="id", limit=min(1000, limit - done), cursor=cursor)
        for record in page:
            items.update(record["id"], {"price": record["price"] * 1.1})
        done += len(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="postgresql", choices=["postgresql"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--peer-rows", type=int, default=20_000)
    args = parser.parse_args()
    with temporary_database(args.backend) as (url, home):
        config = EngineConfig.from_values(home=str(home), database_url=url, redis_url="")
        app = Appbook(config, actor="bench")
        try:
            app.publish_texts({"items.component.yaml": COMPONENT})
            fill(app, args.rows)
            print(f"# {machine()}; {server_version(app.engine)}; load {load_average()}")
            print(f"# {args.rows:,} records; records API over the first {args.peer_rows:,}")
            print("| way | items | seconds | items/s | peak RSS above start |")
            print("| --- | ---: | ---: | ---: | ---: |")
            ways: list[tuple[str, Callable[[], int]]] = [
                (DATAFLOW, lambda: by_dataflow(app)),
                (RECORDS_API, lambda: by_records_api(app, args.peer_rows)),
            ]
            for name, work in ways:
                items, seconds, peak = measured(work)
                rate = items / seconds
                print(f"| {name} | {items:,} | {seconds:.1f} | {rate:,.0f} | {peak:.0f} MiB |")
                sys.stdout.flush()
        finally:
            app.close()


if __name__ == "__main__":
    main()
