"""Database engines for the embedded SQLite default and PostgreSQL.

SQLite is opened in WAL mode with a busy timeout and foreign keys on. pysqlite's own
transaction handling is turned off because it starts transactions lazily, so a
read-modify-write would read outside the write lock and lose concurrent updates; instead
every write transaction starts with ``BEGIN IMMEDIATE`` (the write lock is taken up front and
waiters queue on the busy timeout) and read transactions with a plain deferred ``BEGIN``.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from .errors import ServiceUnavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An Engine for ``url`` with Appbook's connection settings applied."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    # No pre-ping (it doubled the queries of a point read); connections are recycled before
    # servers or proxies drop them, and a dead one surfaces as ServiceUnavailable.
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return sa.create_engine(parsed, **kwargs)


def _sqlite_engine(url: sa.URL, **kwargs: Any) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    connect_args.setdefault("check_same_thread", False)
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, see module doc
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("appbook_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_sqlite(engine: Engine | Connection) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's write lock from its first statement."""
    with translate_unavailable(engine), engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read that does not take the write lock.

    On PostgreSQL each statement runs on its own (autocommit, read committed): a point read
    is then one round trip instead of three (BEGIN, SELECT, ROLLBACK). On SQLite a deferred
    ``BEGIN`` gives the statements one snapshot, at no network cost.
    """
    source = _reader(engine) if engine.dialect.name == "postgresql" else engine
    with (
        translate_unavailable(engine),
        source.connect().execution_options(appbook_write=False) as conn,
        conn.begin(),
    ):
        yield conn


_readers: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def _reader(engine: Engine) -> Engine:
    """A second pool of the same database whose connections stay in autocommit (switching
    a pooled connection back and forth costs round trips of its own)."""
    with _readers_lock:
        reader = _readers.get(engine)
        if reader is None:
            reader = _readers[engine] = create_engine(
                engine.url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
            )
        return reader


def dispose(engine: Engine) -> None:
    """Close every pooled connection of ``engine`` and of its read pool."""
    with _readers_lock:
        reader = _readers.pop(engine, None)
    if reader is not None:
        reader.dispose()
    engine.dispose()


@contextmanager
def translate_unavailable(engine: Engine) -> Iterator[None]:
    """Turn "cannot connect" driver errors into :class:`ServiceUnavailable`."""
    try:
        yield
    except OperationalError as exc:
        if _is_connection_failure(exc):
            where = engine.url.render_as_string(hide_password=True)
            raise ServiceUnavailable(
                f"database {where} is not reachable: {_first_line(exc)}"
            ) from exc
        raise


def _is_connection_failure(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return any(
        s in text
        for s in (
            "connection refused",
            "could not connect",
            "unable to open database",
            "connection failed",
            "server closed the connection",
            "no such host",
            "timeout expired",
        )
    )


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", exc)
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def exclusive_lock(conn: Connection, name: str) -> None:
    """Hold a database-wide lock called ``name`` until ``conn``'s transaction ends.

    PostgreSQL uses a transaction-scoped advisory lock, so two machines publishing at once
    queue; on SQLite the ``BEGIN IMMEDIATE`` write transaction already excludes every other
    writer, so there is nothing more to take.
    """
    if conn.dialect.name == "postgresql":
        # Advisory locks are database-wide: the schema in the key keeps two Appbooks that
        # share a database through different schemas (tests, tenants) from queueing.
        key = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || :n, 0))"
        conn.execute(sa.text(key), {"n": name})
