"""Helpers shared by the benchmarks: throwaway databases, percentiles, result tables.

Benchmarks are run by hand (see bench/README.md); they are not tests and assert nothing
about speed. Each compares an Appbook operation with the peer it replaces, in the same run.
"""

from __future__ import annotations

import cProfile
import io
import os
import platform
import pstats
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

PG_SERVER = os.environ.get(
    "APPBOOK_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def temporary_database(backend: str) -> Iterator[tuple[str, Path]]:
    """A database URL and a home folder, both removed afterwards.

    SQLite lives in a temporary folder; PostgreSQL gets a fresh schema on
    ``$APPBOOK_BENCH_POSTGRES`` (selected through ``search_path``), dropped at the end.
    """
    with tempfile.TemporaryDirectory(prefix="appbook-bench-") as home:
        if backend == "sqlite":
            yield f"sqlite:///{Path(home) / 'appbook.db'}", Path(home)
            return
        admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            sep = "&" if "?" in PG_SERVER else "?"
            yield f"{PG_SERVER}{sep}options=-csearch_path%3D{schema}", Path(home)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            admin.dispose()


def server_version(engine: sa.Engine) -> str:
    """``SQLite 3.x`` or ``PostgreSQL 15.x``, as the server reports it."""
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with engine.connect() as conn:
        return f"PostgreSQL {conn.exec_driver_sql('SHOW server_version').scalar()}"


def machine() -> str:
    """Python version and CPU count of this machine."""
    return f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews the figures."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(samples: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``samples``, linearly interpolated."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Timings:
    """Durations in seconds of one operation, and how many items each call handled."""

    seconds: list[float] = field(default_factory=list)
    items: int = 0

    def time(self, call: Callable[[], object], items: int = 1) -> object:
        """Run ``call`` once, recording its duration."""
        start = time.perf_counter()
        result = call()
        self.seconds.append(time.perf_counter() - start)
        self.items += items
        return result

    def ms(self, p: float) -> float:
        """The ``p``-th percentile duration in milliseconds."""
        return percentile(self.seconds, p) * 1000

    def rate(self) -> float:
        """Items per second over all recorded calls."""
        total = sum(self.seconds)
        return self.items / total if total else float("nan")


@dataclass
class Row:
    """One line of a result table: an Appbook operation next to its peer."""

    operation: str
    backend: str
    records: int
    appbook: Timings
    peer: Timings


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table of ``rows``: p50/p99 in ms, the p50 ratio and throughput."""
    head = (
        "| operation | backend | records | calls | appbook p50 ms | appbook p99 ms | peer p50 ms "
        "| peer p99 ms | ratio p50 | appbook ops/s | peer ops/s |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ratio = r.appbook.ms(50) / r.peer.ms(50) if r.peer.ms(50) else float("nan")
        lines.append(
            f"| {r.operation} | {r.backend} | {r.records:,} | {len(r.appbook.seconds):,} "
            f"| {r.appbook.ms(50):.2f} | {r.appbook.ms(99):.2f} "
            f"| {r.peer.ms(50):.2f} | {r.peer.ms(99):.2f} "
            f"| {ratio:.2f}x | {r.appbook.rate():,.0f} | {r.peer.rate():,.0f} |"
        )
    return "\n".join(lines)


class Profiler:
    """cProfile around the calls given to :meth:`run`, off unless ``enabled``."""

    def __init__(self, enabled: bool) -> None:
        self.profile = cProfile.Profile() if enabled else None

    def run(self, call: Callable[[], object]) -> Callable[[], object]:
        """``call``, wrapped so that it is profiled when profiling is on."""
        profile = self.profile
        if profile is None:
            return call

        def profiled() -> object:
            profile.enable()
            try:
                return call()
            finally:
                profile.disable()

        return profiled

    def report(self, top: int = 25) -> str:
        """The ``top`` functions by internal time and by cumulative time."""
        if self.profile is None:
            return ""
        out = io.StringIO()
        stats = pstats.Stats(self.profile, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        return out.getvalue()
