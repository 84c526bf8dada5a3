"""Benchmark of the data layer: Appbook record operations next to plain SQLAlchemy Core.

Usage (run by hand; see bench/README.md for the figures)::

    .venv/bin/python bench/records.py --backend sqlite --rows 100000 --ops 1000
    .venv/bin/python bench/records.py --backend postgresql --rows 1000000

It fills an invoices-like component with ``--rows`` records through ``import_rows`` (in
chunks) while the peer fills an identical table with a Core ``executemany`` insert, chunk
for chunk. Then it times, one call at a time, a create, a get by id, three queries (limit
50, ordered by the indexed ``due_date``) and an update with a version, each next to the same
operation written by hand in SQLAlchemy Core against the same table, alternating which goes
first. Everything runs in a throwaway SQLite folder or PostgreSQL schema, removed at the end.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Profiler,
    Row,
    Timings,
    format_table,
    load_average,
    machine,
    server_version,
    temporary_database,
)

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook

OPERATIONS = ("import", "create", "get", "query-date", "query-band", "query-status", "update")
FIELDS = """\
fields:
  number:   {type: string, required: true, unique: true, min_length: 2}
  title:    {type: string, required: true, max_length: 200}
  amount:   {type: number, min: 0, indexed: true}
  due_date: {type: datetime, indexed: true}
  status:   {type: enum, choices: {0: Under Review, 1: Accepted, 2: Rejected, 3: Paid, 4: Overdue}, default: 0}
"""  # noqa: E501
MAX_AMOUNT = 10_000.0
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 10 * 365 * 24 * 3600
WARMUP = 20


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    with temporary_database(args.backend) as (url, home):
        folder = home / "components"
        folder.mkdir()
        for name in ("invoices", "invoices_core"):
            (folder / f"{name}.component.yaml").write_text(f"name: {name}\n{FIELDS}")
        config = EngineConfig.from_values(home=str(home), database_url=url, redis_url="")
        app = Appbook(config, actor="bench")
        peer = core_engine(url)
        try:
            app.publish(folder)
            return Bench(app, peer, args).run()
        finally:
            peer.dispose()
            app.close()


def core_engine(url: str) -> sa.Engine:
    """The engine an analyst would make, with Appbook's durability setting on SQLite.

    Appbook opens SQLite with ``synchronous=NORMAL`` (no fsync per commit in WAL mode);
    the peer gets the same, so that the ratios measure code, not durability.
    """
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: object) -> None:
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    return engine


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rows", type=int, default=100_000, help="records to load first")
    parser.add_argument("--ops", type=int, default=1000, help="timed calls per operation")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=120,
        help="stop timing an operation after this long, even before --ops calls",
    )
    parser.add_argument("--chunk", type=int, default=50_000, help="rows per import call")
    parser.add_argument(
        "--window",
        type=float,
        default=0.01,
        help="share of the amount range the band query asks for (0.01: about 1%% of records)",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated operations to time after the load ({', '.join(OPERATIONS)})",
    )
    parser.add_argument(
        "--profile",
        choices=OPERATIONS,
        help="profile the Appbook side of one operation with cProfile and print the hot spots",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.rows, args.ops, args.chunk, args.max_seconds) <= 0 or not 0 < args.window <= 1:
        parser.error("--rows, --ops, --chunk and --max-seconds must be positive, --window ≤ 1")
    args.only = set(args.only.split(",")) if args.only else set(OPERATIONS)
    if args.only - set(OPERATIONS):
        parser.error(f"--only: unknown {', '.join(sorted(args.only - set(OPERATIONS)))}")
    return args


@dataclass(frozen=True)
class QueryShape:
    """One timed query: its key, its label, its Appbook ``where`` and the same in Core."""

    key: str
    label: str
    where: Callable[[int], dict[str, Any]]
    core: Callable[[int], list[sa.ColumnElement[bool]]]


class Bench:
    """One run: load, then time each operation for Appbook and for the Core peer."""

    def __init__(self, app: Appbook, peer: sa.Engine, args: argparse.Namespace) -> None:
        self.app, self.peer, self.args = app, peer, args
        self.handle = app["invoices"]
        self.table = app.registry.get("invoices").table
        self.core_table = app.registry.get("invoices_core").table
        self.random = random.Random(args.seed)
        self.profiler = Profiler(args.profile is not None)
        self.results: list[Row] = []
        self.ids: list[int] = []

    def run(self) -> int:
        args = self.args
        print(f"# records benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
        print(f"# {machine()}; {server_version(self.app.engine)}")
        print(f"# {args.backend}, {args.rows:,} records, up to {args.ops:,} calls per operation")
        print(f"# load average at start: {load_average()}")
        self.load()
        self.analyze()
        for key, step in (
            ("create", self.bench_create),
            ("get", self.bench_get),
            ("update", self.bench_update),
        ):
            if key in args.only:
                step()
        self.bench_queries()
        print(f"\n# load average at end: {load_average()}\n")
        print(format_table(self.results))
        if args.profile:
            print(f"\n# timings above include cProfile overhead on appbook {args.profile}")
        self.explain()
        if args.profile:
            print(f"\n# cProfile of appbook {args.profile}\n")
            print(self.profiler.report())
        return 0

    # -- data ---------------------------------------------------------------------------
    def invoice(self, number: str) -> dict[str, Any]:
        rnd = self.random
        return {
            "number": number,
            "title": f"Invoice {number} for office supplies",
            "amount": round(rnd.uniform(0, MAX_AMOUNT), 2),
            "due_date": EPOCH + timedelta(seconds=rnd.randrange(SPAN_SECONDS)),
            "status": rnd.randrange(5),
        }

    def system(self) -> dict[str, Any]:
        """The system columns a hand-written insert must fill (they are NOT NULL)."""
        now = datetime.now(UTC)
        return {
            "created_at": now,
            "created_by": "bench",
            "updated_at": now,
            "updated_by": "bench",
            "version": 1,
        }

    # -- load ---------------------------------------------------------------------------
    def load(self) -> None:
        """Import ``--rows`` records in chunks; the peer inserts the same rows, same chunks."""
        appbook, peer = Timings(), Timings()
        total, size = self.args.rows, self.args.chunk
        import_rows = self.profiled("import", self.handle.import_rows)
        for n, start in enumerate(range(0, total, size)):
            rows = [self.invoice(f"INV-{i:08d}") for i in range(start, min(start + size, total))]

            def core(rows: list[dict[str, Any]] = rows) -> None:
                system = self.system()
                with self.peer.begin() as conn:
                    conn.execute(self.core_table.insert(), [{**r, **system} for r in rows])

            def ours(rows: list[dict[str, Any]] = rows) -> None:
                result = import_rows(rows)
                self.ids.extend(range(result.first_id, result.last_id + 1))

            pair = [(appbook, ours), (peer, core)]
            for timings, call in pair if n % 2 == 0 else reversed(pair):
                timings.time(call, items=len(rows))
            print(
                f"  loaded {start + len(rows):>9,}: appbook {len(rows) / appbook.seconds[-1]:,.0f}"
                f" rows/s, core {len(rows) / peer.seconds[-1]:,.0f} rows/s",
                file=sys.stderr,
                flush=True,
            )
        label = f"import ({size:,} rows a call; ops/s = rows/s)"
        self.results.append(Row(label, self.args.backend, total, appbook, peer))

    def analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics, as autovacuum does after a bulk load.

        SQLite gets none: Appbook never runs ``ANALYZE`` there, so neither does the bench
        (and without STAT4 its planner cannot use them for ranges anyway).
        """
        if self.app.engine.dialect.name == "postgresql":
            with self.peer.begin() as conn:
                conn.exec_driver_sql("ANALYZE")

    # -- timing -------------------------------------------------------------------------
    def pairs(
        self,
        key: str,
        label: str,
        ours: Callable[[int], object],
        core: Callable[[int], object],
        warmup: int = WARMUP,
    ) -> None:
        """Time ``ours(i)`` and ``core(i)`` for ``i`` in 0..--ops, alternating which is first.

        Warm-up calls get negative ``i``; timing stops early after ``--max-seconds``.
        """
        for i in range(warmup):
            ours(-1 - i)
            core(-1 - i)
        appbook, peer = Timings(), Timings()
        records = self.app.records.count("invoices")
        ours = self.profiled(key, ours)
        deadline = time.perf_counter() + self.args.max_seconds
        for i in range(self.args.ops):
            pair = [(appbook, ours), (peer, core)]
            for timings, call in pair if i % 2 == 0 else reversed(pair):
                timings.time(lambda call=call, i=i: call(i))
            if time.perf_counter() > deadline:
                break
        self.results.append(Row(label, self.args.backend, records, appbook, peer))
        print(f"  timed {label}: {len(appbook.seconds)} calls", file=sys.stderr, flush=True)

    def bench_create(self) -> None:
        def ours(i: int) -> object:
            return self.handle.create(self.invoice(f"APP-{i}"))

        def core(i: int) -> object:
            row = {**self.invoice(f"CORE-{i}"), **self.system()}
            with self.peer.begin() as conn:
                return conn.execute(self.table.insert().returning(self.table.c.id), row).scalar()

        self.pairs("create", "create", ours, core)

    def bench_get(self) -> None:
        ids = self.random.choices(self.ids, k=self.args.ops + WARMUP)
        table = self.table

        def core(i: int) -> object:
            with self.peer.connect() as conn:
                query = sa.select(table).where(table.c.id == ids[i])
                return conn.execute(query).mappings().first()

        self.pairs("get", "get by id", lambda i: self.handle.get(ids[i]), core)

    def bench_update(self) -> None:
        chosen = self.random.sample(self.ids, 2 * (self.args.ops + WARMUP))
        table = self.table

        def ours(i: int) -> object:
            amount = round(self.random.uniform(0, MAX_AMOUNT), 3)
            return self.handle.update(chosen[2 * i], {"amount": amount}, version=1)

        def core(i: int) -> object:
            amount = round(self.random.uniform(0, MAX_AMOUNT), 3)
            record_id = chosen[2 * i + 1]
            stmt = (
                table.update()
                .where(table.c.id == record_id, table.c.version == 1)
                .values(
                    amount=amount,
                    version=table.c.version + 1,
                    updated_at=datetime.now(UTC),
                    updated_by="bench",
                )
            )
            with self.peer.begin() as conn:
                if conn.execute(stmt).rowcount != 1:
                    raise RuntimeError(f"record {record_id} is not at version 1")
            return None

        self.pairs("update", "update with version", ours, core)

    # -- queries ------------------------------------------------------------------------
    def query_shapes(self) -> list[QueryShape]:
        """The timed queries, all ``order_by=["-due_date"], limit=50``."""
        t, window = self.table, MAX_AMOUNT * self.args.window

        def draw(i: int) -> random.Random:
            return random.Random(self.args.seed * 1_000_003 + i)

        def before(i: int) -> datetime:
            return EPOCH + timedelta(seconds=int(SPAN_SECONDS * draw(i).uniform(0.05, 1)))

        def band(i: int) -> tuple[float, float]:
            low = round(draw(i).uniform(0, MAX_AMOUNT - window), 2)
            return low, round(low + window, 2)

        def least(i: int) -> float:
            return round(draw(i).uniform(0, 100), 2)

        return [
            QueryShape(
                "query-date",
                "query: due_date < t, order -due_date",
                lambda i: {"due_date": {"lt": before(i)}},
                lambda i: [t.c.due_date < before(i)],
            ),
            QueryShape(
                "query-band",
                f"query: amount in a {self.args.window:.0%} band, order -due_date",
                lambda i: {"amount": {"ge": band(i)[0], "lt": band(i)[1]}},
                lambda i: [t.c.amount >= band(i)[0], t.c.amount < band(i)[1]],
            ),
            QueryShape(
                "query-status",
                "query: amount > x, status in [0, 1], order -due_date",
                lambda i: {"amount": {"gt": least(i)}, "status": {"in": [0, 1]}},
                lambda i: [t.c.amount > least(i), t.c.status.in_([0, 1])],
            ),
        ]

    def appbook_query(self, shape: QueryShape, i: int) -> list[dict[str, Any]]:
        return self.handle.query(where=shape.where(i), order_by=["-due_date"], limit=50)

    def core_query(self, shape: QueryShape, i: int) -> list[dict[str, Any]]:
        table = self.table
        query = (
            sa.select(table)
            .where(*shape.core(i))
            .order_by(table.c.due_date.desc(), table.c.id)
            .limit(50)
        )
        with self.peer.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def bench_queries(self) -> None:
        for shape in self.query_shapes():
            if shape.key not in self.args.only:
                continue
            # Both must return the same page, or the comparison means nothing.
            ours = [r["id"] for r in self.appbook_query(shape, 0)]
            theirs = [r["id"] for r in self.core_query(shape, 0)]
            if ours != theirs or not ours:
                raise SystemExit(f"{shape.label}: appbook and core pages differ")
            self.pairs(
                shape.key,
                shape.label,
                lambda i, shape=shape: self.appbook_query(shape, i),
                lambda i, shape=shape: self.core_query(shape, i),
                warmup=3,
            )

    # -- plans and profiles -------------------------------------------------------------
    def explain(self) -> None:
        """Print the plan of each query statement Appbook sends (captured from its engine)."""
        sqlite = self.app.engine.dialect.name == "sqlite"
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ANALYZE "
        for shape in self.query_shapes():
            if shape.key not in self.args.only:
                continue
            statement, params = self.captured(lambda shape=shape: self.appbook_query(shape, 0))
            with self.peer.connect() as conn:
                plan = conn.exec_driver_sql(prefix + statement, params).all()
            print(f"\n# {prefix}of the appbook {shape.label}")
            print(f"#   {' '.join(statement.split())}")
            for line in plan:
                print("    " + (str(line[-1]) if sqlite else str(line[0])))

    def captured(self, call: Callable[[], object]) -> tuple[str, Any]:
        """The last ``ORDER BY`` statement and parameters ``call`` sent to the database."""
        seen: list[tuple[str, Any]] = []

        def capture(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
            if "ORDER BY" in statement:
                seen.append((statement, params))

        sa.event.listen(self.app.engine, "before_cursor_execute", capture)
        try:
            call()
        finally:
            sa.event.remove(self.app.engine, "before_cursor_execute", capture)
        return seen[-1]

    def profiled(self, operation: str, call: Callable[..., Any]) -> Callable[..., Any]:
        if self.args.profile != operation:
            return call
        profiler = self.profiler

        def wrapped(*args: Any) -> Any:
            return profiler.run(lambda: call(*args))()

        return wrapped


if __name__ == "__main__":
    raise SystemExit(main())
