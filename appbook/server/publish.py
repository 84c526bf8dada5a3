"""Publications: apply a set of component definitions to the database, atomically.

A publication validates all definitions together, diffs the schema against the database,
refuses changes that would lose data (unless ``allow_destructive``), applies the rest in one
transaction under a database-wide lock, and stores an immutable row describing what it did.
Publishing the content already in force is a no-op. A failure leaves the previous
publication in force and the database untouched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from . import migrate, sources
from .db import exclusive_lock, write_transaction
from .definitions import ComponentDef, from_snapshot
from .errors import DestructiveChange, NotFound, PublishError
from .systables import PUBLICATIONS, utcnow
from .tables import build_metadata


@dataclass(frozen=True)
class PublishResult:
    """What a publication did."""

    number: int
    changed: bool
    kind: str
    created_at: datetime
    created_by: str
    content_hash: str
    migration: list[str]
    components: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


def content_hash(
    definitions: Mapping[str, ComponentDef], sources: Mapping[str, Any] | None = None
) -> str:
    """A hash of the definitions' content and of the notebooks and scripts published with
    them (file names and key order do not matter)."""
    snapshot: dict[str, Any] = {name: definitions[name].snapshot() for name in sorted(definitions)}
    if sources:  # absent for definitions alone, so their hashes stay what they were
        snapshot = {"definitions": snapshot, "sources": sources}
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()


def current(conn: Connection) -> sa.Row[Any] | None:
    """The publication in force, or ``None`` before the first one."""
    query = sa.select(PUBLICATIONS).order_by(PUBLICATIONS.c.number.desc()).limit(1)
    return conn.execute(query).first()


def publish(
    engine: Engine,
    definitions: Mapping[str, ComponentDef],
    *,
    actor: str,
    allow_destructive: bool = False,
    kind: str = "publish",
    keep_data: bool = False,
    note: str = "",
    files: sources.Files | None = None,
    stored: Mapping[str, Any] | None = None,
) -> PublishResult:
    """Make ``definitions`` the publication in force; see the module docstring.

    ``keep_data`` (used by rollback) never drops a table or column: fields and components
    missing from ``definitions`` keep their data in place. ``files`` are the notebooks and
    scripts published with them (:mod:`appbook.server.sources`); ``stored`` is a map of
    contents already stored (rollback).
    """
    mapping = dict(stored) if stored is not None else sources.digests(files or {})
    digest = content_hash(definitions, mapping)
    with write_transaction(engine) as conn:
        exclusive_lock(conn, "appbook.publish")
        prev = current(conn)
        if prev is not None and prev.content_hash == digest:
            return _result(prev, changed=False)
        before = from_snapshot(prev.definitions) if prev is not None else {}
        steps = _plan(conn, before, definitions, allow_destructive, keep_data)
        try:
            migrate.apply(conn, steps.ops)
        except DBAPIError as exc:
            raise PublishError(f"the database refused the schema change: {_reason(exc)}") from exc
        if files:
            sources.store(conn, files)
        row = {
            "number": (prev.number if prev is not None else 0) + 1,
            "created_at": utcnow(),
            "created_by": actor,
            "kind": kind,
            "content_hash": digest,
            "definitions": {n: definitions[n].snapshot() for n in sorted(definitions)},
            "migration": steps.describe(),
            "note": note,
            "sources": mapping,
        }
        conn.execute(PUBLICATIONS.insert().values(**row))
        return _result(sa.Row, changed=True, values=row)


def rollback(
    engine: Engine, number: int, *, actor: str, allow_destructive: bool = False
) -> PublishResult:
    """Publish again the definitions of publication ``number``, keeping all data columns."""
    row = None
    if 0 < number < 2**31:
        with engine.connect() as conn:
            query = sa.select(PUBLICATIONS).where(PUBLICATIONS.c.number == number)
            row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"publication {number} does not exist")
    return publish(
        engine,
        from_snapshot(row.definitions),
        actor=actor,
        allow_destructive=allow_destructive,
        kind="rollback",
        keep_data=True,
        note=f"rollback to publication {number}",
        stored=row.sources or {},
    )


def history(engine: Engine) -> list[PublishResult]:
    """Every publication, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(PUBLICATIONS).order_by(PUBLICATIONS.c.number.desc())).all()
    return [_result(r, changed=True) for r in rows]


def _plan(
    conn: Connection,
    before: Mapping[str, ComponentDef],
    after: Mapping[str, ComponentDef],
    allow_destructive: bool,
    keep_data: bool,
) -> migrate.Plan:
    problems: list[str] = []

    def droppable(table: str, column: str | None) -> bool:
        if keep_data or table not in before:
            return False  # leftovers of a rollback stay untouched
        if column is None:
            count = _count(conn, table)
            if count:
                problems.append(
                    f"component {table!r} was removed: its {count} records would be dropped"
                )
            return True
        if column not in before[table].stored_fields():
            return False
        count = _count(conn, table, sa.column(column).is_not(None))
        if count:
            problems.append(f"field {table}.{column} was removed: {count} records have a value")
        return True

    known = set(before) | set(after)
    steps = migrate.plan(conn, build_metadata(after), known, droppable=droppable)
    for table, column, old, new in steps.retypes:
        count = _count(conn, table, sa.column(column).is_not(None))
        if count:
            problems.append(
                f"field {table}.{column} changes type ({old} -> {new}): {count} stored values "
                "would be converted and may be lost"
            )
    problems += _rule_changes(conn, before, after)
    if problems and not allow_destructive:
        raise DestructiveChange(problems)
    _check_unique(conn, before, after)
    return steps


def _rule_changes(
    conn: Connection, before: Mapping[str, ComponentDef], after: Mapping[str, ComponentDef]
) -> list[str]:
    """Rules tightened over existing data: new required fields, removed enum choices."""
    problems = []
    for name, defn in after.items():
        old = before.get(name)
        if old is None:
            continue
        for fname, field in defn.stored_fields().items():
            was = old.stored_fields().get(fname)
            if was is None:
                continue
            col: sa.ColumnClause[Any] = sa.column(fname)
            if field.required and not was.required:
                count = _count(conn, name, col.is_(None))
                if count:
                    problems.append(
                        f"field {name}.{fname} becomes required: {count} records have no value"
                    )
            if field.type == "enum" and was.type == "enum":
                gone = set(was.choice_values()) - set(field.choice_values())
                count = _count(conn, name, col.in_(sorted(gone, key=str))) if gone else 0
                if count:
                    shown = ", ".join(map(str, sorted(gone, key=str)))
                    problems.append(
                        f"field {name}.{fname} loses choices {shown}: {count} records use them"
                    )
    return problems


def _check_unique(
    conn: Connection, before: Mapping[str, ComponentDef], after: Mapping[str, ComponentDef]
) -> None:
    """Explain duplicates before the database refuses a new unique index."""
    for name, defn in after.items():
        if name not in before:
            continue
        for fname, field in defn.stored_fields().items():
            was = before[name].stored_fields().get(fname)
            if not field.unique or was is None or was.unique:
                continue
            col: sa.ColumnClause[Any] = sa.column(fname)
            dup = conn.execute(
                sa.select(col, sa.func.count())
                .select_from(sa.table(name))
                .where(col.is_not(None))
                .group_by(col)
                .having(sa.func.count() > 1)
                .limit(3)
            ).all()
            if dup:
                shown = ", ".join(f"{v!r} ({n} times)" for v, n in dup)
                raise PublishError(f"cannot make {name}.{fname} unique: duplicate values {shown}")


def _count(conn: Connection, table: str, where: sa.ColumnElement[bool] | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(sa.table(table))
    if where is not None:
        query = query.where(where)
    return int(conn.execute(query).scalar_one())


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0]


def _result(row: Any, *, changed: bool, values: Mapping[str, Any] | None = None) -> PublishResult:
    data = dict(values) if values is not None else dict(row._mapping)
    return PublishResult(
        number=data["number"],
        changed=changed,
        kind=data["kind"],
        created_at=data["created_at"],
        created_by=data["created_by"],
        content_hash=data["content_hash"],
        migration=list(data["migration"]),
        components=sorted(data["definitions"]),
    )
