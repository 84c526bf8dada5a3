"""Reads of one record by id, answered on the event loop without a thread hop.

``GET records/{id}`` is the hottest request of the REST API. Through the thread pool it cost
1.6 to 2.4 ms of server CPU (bench/README.md, "Where the time goes"): the hop to a pool thread,
GIL hand-offs on every socket or SQLite call, and SQLAlchemy building the statement and its
cache key per call. A :class:`PointReader` keeps one compiled statement per component and
runs it straight from the event loop:

- **PostgreSQL**: psycopg's async connections from a ``psycopg_pool`` pool in autocommit,
  with server-side prepared statements. The loop never blocks on the network.
- **SQLite**: one ``sqlite3`` connection used only from the loop's thread. A primary-key
  lookup in a local WAL database reads a few cached pages; in WAL mode readers do not wait
  for writers, so the call does not block. It is opened with no busy timeout so that it
  never waits: if SQLite ever answers "busy", the caller falls back to the pool path.

Rows leave through the same SQLAlchemy result processors (datetime parsing on SQLite, the
UTC decorator, JSON, booleans) as :meth:`RecordStore.get`, so both paths return equal
records; the test suite compares them field by field on every type and both backends.
Anything the fast path cannot answer at once (registry due for a refresh, busy database,
broken connection) returns :data:`MISS` and the caller takes the ordinary path.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from .definitions.models import SYSTEM_FIELDS
from .records import MAX_ID
from .registry import Component, Registry

log = logging.getLogger(__name__)

MISS: Final = object()
"""Returned when the fast path cannot answer now; the caller uses the ordinary path."""

Processor = Callable[[Any], Any] | None


@dataclass
class _Statement:
    sql: str
    names: tuple[str, ...]
    types: tuple[sa.types.TypeEngine[Any], ...]
    dialect: sa.Dialect
    processors: tuple[Processor, ...] | None = None

    def convert(self, row: Sequence[Any], cursor: Any) -> dict[str, Any]:
        """The row as a record, through the processors SQLAlchemy would apply."""
        processors = self.processors
        if processors is None:
            # Some processors depend on the driver's type code (PostgreSQL numerics), known
            # only from a result's description; the same statement always has the same one
            # (read once: psycopg builds the description's objects on every access).
            description = cursor.description
            codes = [d[1] for d in description] if description else [None] * len(self.names)
            processors = self.processors = tuple(
                t.dialect_impl(self.dialect).result_processor(self.dialect, code)
                for t, code in zip(self.types, codes, strict=True)
            )
        return {
            n: (p(v) if p is not None and v is not None else v)
            for n, p, v in zip(self.names, processors, row, strict=True)
        }


class PointReader:
    """Reads one record by id from the event loop; see the module docstring."""

    def __init__(self, engine: Engine, registry: Registry, *, keep_fresh: bool = False) -> None:
        """``keep_fresh``: refresh the registry in the background (every half check interval,
        in the loop's default executor) so that requests never find it due for a check.
        Without it, every request after an interval would step aside to the pool path
        until one of them refreshed it, a burst that showed as the p99 of a load test."""
        self.engine = engine
        self.registry = registry
        self.keep_fresh = keep_fresh
        # With the background refresh, a cache a few intervals old still means "a refresh
        # is late" (a slow database), not "nobody refreshes": serve it, as get() would.
        self.max_age = 3 * registry.check_interval if keep_fresh else None
        self._statements: dict[sa.Table, _Statement] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, name: str, record_id: int) -> dict[str, Any] | object | None:
        """The record as :meth:`RecordStore.get` returns it, ``None`` when there is no such
        record, or :data:`MISS` when the ordinary path must answer."""
        if self.keep_fresh and self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())
        comp = self.registry.cached(name, self.max_age)
        if comp is None or not 0 < record_id <= MAX_ID:
            return MISS  # unknown name, stale registry or bad id: the ordinary path explains
        stmt = self._statement(comp)
        return await self._fetch(stmt, record_id)

    async def close(self) -> None:
        """Stop the background refresh and release connections."""
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        await self._close()

    async def _close(self) -> None:
        pass

    async def _refresh_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.registry.refresh)
            except Exception:
                # A database outage: requests take the ordinary path, which reports it.
                log.debug("registry refresh failed", exc_info=True)
            await asyncio.sleep(self.registry.check_interval / 2)

    async def _fetch(self, stmt: _Statement, record_id: int) -> dict[str, Any] | object | None:
        raise NotImplementedError

    def _statement(self, comp: Component) -> _Statement:
        # Keyed by Table: a new publication builds new Table objects, so a changed component
        # gets a new statement and old ones go when the registry drops their tables.
        found = self._statements.get(comp.table)
        if found is None:
            if len(self._statements) > 1000:
                self._statements.clear()
            found = self._statements[comp.table] = self._compile_for(comp)
        return found

    def _compile_for(self, comp: Component) -> _Statement:
        return _compile(self.engine.dialect, comp)


def _compile(dialect: sa.Dialect, comp: Component, *, many: bool = False) -> _Statement:
    table = comp.table
    names = (*SYSTEM_FIELDS, *comp.definition.stored_fields())
    key: sa.ColumnElement[bool] = (
        table.c.id == sa.any_(sa.cast(sa.bindparam("ids"), postgresql.ARRAY(sa.BigInteger())))
        if many
        else table.c.id == sa.bindparam("id")
    )
    query = sa.select(*(table.c[n] for n in names)).where(key)
    sql = query.compile(dialect=dialect).string
    return _Statement(sql, names, tuple(table.c[n].type for n in names), dialect)


class SQLitePointReader(PointReader):
    """SQLite: one connection owned by the event loop's thread."""

    def __init__(self, engine: Engine, registry: Registry, *, keep_fresh: bool = False) -> None:
        super().__init__(engine, registry, keep_fresh=keep_fresh)
        self._conn: sqlite3.Connection | None = None

    async def _fetch(self, stmt: _Statement, record_id: int) -> dict[str, Any] | object | None:
        if self._conn is None:
            # Opened on first use, in the loop's thread (sqlite3 connections stay in theirs);
            # timeout=0: never wait on a lock inside the event loop, "busy" means MISS.
            database = str(self.engine.url.database)
            self._conn = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            cur = self._conn.execute(stmt.sql, (record_id,))
            row: Sequence[Any] | None = cur.fetchone()
        except sqlite3.OperationalError:
            return MISS  # busy, or the table changed under us: the ordinary path decides
        return None if row is None else stmt.convert(row, cur)

    async def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresPointReader(PointReader):
    """PostgreSQL: an async psycopg pool of autocommit connections, and batched reads.

    Reads of one component that arrive in the same turn of the event loop share one query,
    ``WHERE id = ANY(ids)`` (the pattern known as a data loader). Under load, 32 concurrent
    GETs become a few queries instead of 32 round trips, each with its own send, wait and
    wake-up; alone, a read is still one query, sent on the next turn of the loop.
    """

    batch_limit = 200

    def __init__(
        self, engine: Engine, registry: Registry, *, keep_fresh: bool = False, max_size: int = 4
    ) -> None:
        super().__init__(engine, registry, keep_fresh=keep_fresh)
        from psycopg_pool import AsyncConnectionPool

        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        # Opened lazily from the first get(), inside the running loop.
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            timeout=10,
            open=False,
        )
        self._opened: asyncio.Lock | None = None
        self._open = False
        self._waiting: dict[int, dict[int, asyncio.Future[Any]]] = {}
        self.queries = 0
        """Queries sent so far (each answers one batch)."""

    def _compile_for(self, comp: Component) -> _Statement:
        return _compile(self.engine.dialect, comp, many=True)

    async def _fetch(self, stmt: _Statement, record_id: int) -> dict[str, Any] | object | None:
        if not self._open:
            await self._open_pool()
        loop = asyncio.get_running_loop()
        batch = self._waiting.get(id(stmt))
        if batch is None or len(batch) >= self.batch_limit:
            batch = self._waiting[id(stmt)] = {}
            loop.call_soon(self._send, stmt, batch)
        future = batch.get(record_id)
        if future is None:
            future = batch[record_id] = loop.create_future()
        return await asyncio.shield(future)  # a cancelled request leaves the batch intact

    def _send(self, stmt: _Statement, batch: dict[int, asyncio.Future[Any]]) -> None:
        if self._waiting.get(id(stmt)) is batch:
            del self._waiting[id(stmt)]  # later reads start a new batch
        task = asyncio.get_running_loop().create_task(self._run_batch(stmt, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, stmt: _Statement, batch: dict[int, asyncio.Future[Any]]) -> None:
        import psycopg
        from psycopg_pool import PoolTimeout

        found: dict[int, dict[str, Any]] = {}
        failed = False
        self.queries += 1
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(stmt.sql, {"ids": list(batch)}, prepare=True)
                for row in await cur.fetchall():
                    record = stmt.convert(row, cur)
                    found[record["id"]] = record
        except (psycopg.Error, PoolTimeout):
            # A dropped connection, a table changed under a prepared statement, a pool out of
            # connections: the ordinary path answers, or explains the error properly.
            failed = True
        for record_id, future in batch.items():
            if not future.done():
                future.set_result(MISS if failed else found.get(record_id))

    async def _open_pool(self) -> None:
        if self._opened is None:
            self._opened = asyncio.Lock()
        async with self._opened:
            if not self._open:
                await self._pool.open(wait=False)
                self._open = True

    async def _close(self) -> None:
        if self._open:
            await self._pool.close()
            self._open = False


def point_reader(
    engine: Engine, registry: Registry, *, keep_fresh: bool = False
) -> PointReader | None:
    """The fast reader for ``engine``'s database, or None where there is none (in-memory
    SQLite, other backends)."""
    backend = engine.dialect.name
    if backend == "postgresql" and engine.dialect.driver == "psycopg":
        return PostgresPointReader(engine, registry, keep_fresh=keep_fresh)
    if backend == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return SQLitePointReader(engine, registry, keep_fresh=keep_fresh)
    return None
