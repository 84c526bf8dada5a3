"""Benchmark of the data grid: DataGrid pages next to the same queries through the engine.

Usage (run by hand; see bench/README.md for the figures)::

    .venv/bin/python bench/grid.py --backend postgresql --rows 1000000
    .venv/bin/python bench/grid.py --backend sqlite --rows 100000 --opens 10

It fills an items-like component with ``--rows`` records through ``import_rows`` (50,000 a
call), then times, one call at a time, what a viewer does with a grid of 25 rows: open it
(first page and total), page forward, change a filter on a sorted grid (first page and
total), page forward through the filtered rows, and change the sort. The peer of each call
is the same query through ``app[name].query`` (same ``where``, ``order_by``, ``fields``,
``limit``, cursor and total), so the ratio is what the grid adds on top: building widgets,
rendering cells, looking up reference labels. The two sides alternate which goes first.
Everything runs in a throwaway SQLite folder or PostgreSQL schema, removed at the end.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Row, Timings, format_table, load_average, machine, temporary_database

from appbook.kernels.ui.grid import DataGrid
from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.handle import QueryResult

COMPONENT = """\
name: items
fields:
  code:   {type: string, required: true, unique: true}
  title:  {type: string, required: true, max_length: 200}
  qty:    {type: integer, min: 0, max: 1000, indexed: true}
  price:  {type: number, min: 0, indexed: true}
  due:    {type: datetime, indexed: true}
  status: {type: enum, choices: {0: New, 1: Open, 2: Shipped, 3: Closed, 4: Lost}, default: 0}
  active: {type: boolean, default: true}
"""
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 10 * 365 * 24 * 3600
TARGET_MS = 300.0
SORTS = ("-due", "price", "-qty", "code")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    with temporary_database(args.backend) as (url, home):
        config = EngineConfig.from_values(home=str(home), database_url=url, redis_url="")
        app = Appbook(config, actor="bench")
        try:
            app.publish_texts({"items.component.yaml": COMPONENT})
            return GridBench(app, args).run()
        finally:
            app.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--rows", type=int, default=1_000_000, help="records to load first")
    parser.add_argument("--opens", type=int, default=30, help="grids opened (timed rounds)")
    parser.add_argument("--pages", type=int, default=20, help="next pages per round")
    parser.add_argument("--page-size", type=int, default=25)
    parser.add_argument("--chunk", type=int, default=50_000, help="rows per import call")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.rows, args.opens, args.pages, args.page_size, args.chunk) <= 0:
        parser.error("--rows, --opens, --pages, --page-size and --chunk must be positive")
    return args


class GridBench:
    """One run: load, then time grid operations next to the bare engine queries."""

    def __init__(self, app: Appbook, args: argparse.Namespace) -> None:
        self.app, self.args = app, args
        self.handle = app["items"]
        self.random = random.Random(args.seed)
        self.timings: dict[str, tuple[Timings, Timings]] = {}
        self.fields = [f for f in self.handle.definition.fields if f != "id"]

    def run(self) -> int:
        args = self.args
        print(f"# grid benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
        print(f"# {machine()}; {args.backend}, {args.rows:,} records, page size {args.page_size}")
        print(f"# load average at start: {load_average()}")
        self.load()
        self.warm_up()
        for round_ in range(args.opens):
            self.round(round_)
        print(f"\n# load average at end: {load_average()}\n")
        rows = [Row(label, args.backend, args.rows, ours, peer) for label, (ours, peer) in
                self.timings.items()]  # fmt: skip
        print(format_table(rows))
        worst = max(ours.ms(99) for ours, _ in self.timings.values())
        verdict = "met" if worst < TARGET_MS else "missed"
        print(f"\n# target: every grid page under {TARGET_MS:.0f} ms: {verdict} (worst p99 "
              f"{worst:.1f} ms)")  # fmt: skip
        return 0

    # -- data ---------------------------------------------------------------------------
    def item(self, i: int) -> dict[str, Any]:
        rnd = self.random
        return {
            "code": f"IT-{i:08d}",
            "title": f"Item {i} of the catalogue",
            "qty": rnd.randrange(1001),
            "price": round(rnd.uniform(0, 10_000), 2),
            "due": EPOCH + timedelta(seconds=rnd.randrange(SPAN_SECONDS)),
            "status": rnd.randrange(5),
            "active": rnd.random() < 0.8,
        }

    def load(self) -> None:
        total, size = self.args.rows, self.args.chunk
        for start in range(0, total, size):
            began = time.perf_counter()
            self.handle.import_rows(self.item(i) for i in range(start, min(start + size, total)))
            rate = min(size, total - start) / (time.perf_counter() - began)
            print(f"  loaded {min(start + size, total):>9,} ({rate:,.0f} rows/s)",
                  file=sys.stderr, flush=True)  # fmt: skip
        if self.app.engine.dialect.name == "postgresql":
            with self.app.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")  # as autovacuum would after a bulk load

    # -- timing -------------------------------------------------------------------------
    def pair(self, label: str, ours: Callable[[], Any], peer: Callable[[], Any], n: int) -> Any:
        """Time ``ours()`` and ``peer()`` once each, alternating which goes first."""
        timings = self.timings.setdefault(label, (Timings(), Timings()))
        calls = [(timings[0], ours), (timings[1], peer)]
        results = [t.time(call) for t, call in (calls if n % 2 == 0 else calls[::-1])]
        return results if n % 2 == 0 else results[::-1]

    def query(self, cursor: str | None = None, **kwargs: Any) -> QueryResult:
        """The peer: what the grid asks the engine for, asked directly."""
        kwargs.setdefault("limit", self.args.page_size)
        return self.handle.query(cursor=cursor, fields=self.fields, **kwargs)

    def grid(self, **kwargs: Any) -> DataGrid:
        return DataGrid(self.app, "items", page_size=self.args.page_size, **kwargs)

    def warm_up(self) -> None:
        """One untimed round of every call: imports, caches and connections."""
        grid = self.grid()
        grid.next_page()
        grid.close()
        self.query(total=True)

    def round(self, n: int) -> None:
        """Open a grid and page it; filter and sort it, and page again; the peer alike."""
        grid, page = self.pair(
            "open: first page + total", self.grid, lambda: self.query(total=True), n
        )
        check(grid, page, "open")
        self.page_on(grid, page, "next page", n)

        sort, resort = SORTS[n % len(SORTS)], SORTS[(n + 1) % len(SORTS)]
        grid.sort(sort)  # untimed: the sort change is timed below
        grid.set_filter("status", 1)
        low = self.random.randrange(990)
        where = {"status": 1, "qty": {"ge": low, "le": low + 10}}
        _, page = self.pair(
            "sorted + filtered: filter change (first page + total)",
            lambda: grid.set_filter("qty", (low, low + 10)),
            lambda: self.query(where=where, order_by=[sort], total=True),
            n,
        )
        check(grid, page, "filter change")
        self.page_on(grid, page, "sorted + filtered: next page", n, where=where, order_by=[sort])
        _, page = self.pair(
            "sorted + filtered: sort change (first page)",
            lambda: grid.sort(resort),
            lambda: self.query(where=where, order_by=[resort]),
            n,
        )
        check(grid, page, "sort change")
        grid.close()
        print(f"  round {n + 1}/{self.args.opens}", file=sys.stderr, flush=True)

    def page_on(self, grid: DataGrid, page: QueryResult, label: str, n: int, **query: Any) -> None:
        """Up to ``--pages`` next pages, the grid's and the peer's through the same cursors."""
        for _ in range(self.args.pages):
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
            page = self.pair(label, grid.next_page, partial(self.query, cursor, **query), n)[1]
            check(grid, page, label)


def check(grid: DataGrid, page: QueryResult, what: str) -> None:
    """The grid must show exactly the peer's page, or the comparison means nothing."""
    if grid.error or [r["id"] for r in grid.rows] != [r["id"] for r in page]:
        raise SystemExit(f"{what}: the grid and the engine show different rows ({grid.error})")
    if page.total is not None and grid.total != page.total:
        raise SystemExit(f"{what}: the grid counts {grid.total}, the engine {page.total}")


if __name__ == "__main__":
    raise SystemExit(main())
