"""Records of published components: create, read, update, delete, query, count, aggregate.

Each write runs in one database transaction that also appends its event to the outbox;
events reach the bus only after the commit. Optimistic concurrency: every record carries a
``version``; an update or delete given a version that is no longer current raises
:class:`Conflict` and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .db import read_transaction
from .definitions.models import SYSTEM_FIELDS, ComponentDef, FieldDef
from .errors import Conflict, NotFound, QueryError, ValidationError
from .events import EventBus, RecordEvent, append_event
from .payload import prepare
from .query import (
    after,
    compile_where,
    decode_cursor,
    encode_cursor,
    field_of,
    order_clauses,
    parse_order,
)
from .registry import Component, Registry
from .systables import utcnow

if TYPE_CHECKING:
    from .files import FileStore
    from .writer import Writer

MAX_LIMIT = 10_000
MAX_ID = 2**63 - 1  # BIGINT; larger ids cannot exist
AGGREGATES = {"count", "sum", "avg", "min", "max"}
_METRIC = re.compile(r"^\s*(count|sum|avg|min|max)\s*(?:\(\s*([a-z][a-z0-9_]*)?\s*\))?\s*$")

FileStoreRef = Callable[[], "FileStore"]  # the store is built on first use


@dataclass
class Page:
    """One page of a query: the records, a cursor for the next page, and the total if asked."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None
    total: int | None = None
    fields: list[str] = field(default_factory=list)


class RecordStore:
    """Record operations on every published component of one database."""

    def __init__(
        self, engine: Engine, registry: Registry, bus: EventBus, files: FileStoreRef | None = None
    ) -> None:
        self.engine, self.registry, self.bus, self.files = engine, registry, bus, files

    # -- writes -----------------------------------------------------------------------
    def create(self, name: str, values: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
        """Validate and insert one record; returns it with its system fields."""
        with self.transaction(actor) as writer:
            return writer.create(name, values)

    def transaction(self, actor: str) -> AbstractContextManager[Writer]:
        """One write transaction for many writes: ``with records.transaction(actor) as w:
        w.create(...); w.update(...)``; they commit together when the block ends (or none
        does, if it raises), and their events reach the bus after the commit."""
        from .writer import transaction

        return transaction(self, actor)

    def _insert(
        self, conn: Connection, name: str, values: Mapping[str, Any], actor: str
    ) -> tuple[dict[str, Any], RecordEvent]:
        comp = self.registry.get(name)
        clean, errors = prepare(comp.definition, values, partial=False)
        if errors:
            raise ValidationError(errors, where=name)
        now = utcnow()
        row = {
            **clean,
            "created_at": now,
            "created_by": actor,
            "updated_at": now,
            "updated_by": actor,
            "version": 1,
        }
        self._check_links(conn, comp, [clean])
        with unique_conflicts(comp):
            inserted = conn.execute(comp.table.insert().values(**row)).inserted_primary_key
        new_id = int(inserted[0]) if inserted is not None else 0
        record = _record(comp, {**row, "id": new_id})
        event = append_event(
            conn,
            component=name,
            record_id=new_id,
            op="create",
            changed=sorted(clean),
            version=1,
            actor=actor,
        )
        return record, event

    def update(
        self,
        name: str,
        record_id: int,
        values: Mapping[str, Any],
        *,
        actor: str,
        version: int | None = None,
    ) -> dict[str, Any]:
        """Change the given fields; with ``version``, only if the record is still at it."""
        with self.transaction(actor) as writer:
            return writer.update(name, record_id, values, version=version)

    def delete(self, name: str, record_id: int, *, actor: str, version: int | None = None) -> None:
        """Delete a record; refused while other records reference it."""
        with self.transaction(actor) as writer:
            writer.delete(name, record_id, version=version)

    def _change(
        self,
        conn: Connection,
        name: str,
        record_id: int,
        values: Mapping[str, Any],
        actor: str,
        version: int | None,
    ) -> tuple[dict[str, Any], RecordEvent | None]:
        comp = self.registry.get(name)
        clean, errors = prepare(comp.definition, values, partial=True)
        if "id" in values and values["id"] != record_id:
            errors["id"] = [f"does not match the record being updated ({record_id})"]
        if errors:
            raise ValidationError(errors, where=f"{name} {record_id}")
        if version is None and values.get("version") is not None:
            version = int(values["version"])
        current = self._current(conn, comp, record_id, version)
        changed = sorted(k for k, v in clean.items() if current[k] != v)
        if not changed:
            return _record(comp, current), None
        self._check_links(conn, comp, [{k: clean[k] for k in changed}])
        row = {k: clean[k] for k in changed}
        row.update(updated_at=utcnow(), updated_by=actor, version=current["version"] + 1)
        with unique_conflicts(comp):
            conn.execute(comp.table.update().where(comp.table.c.id == record_id).values(**row))
        event = append_event(
            conn,
            component=name,
            record_id=record_id,
            op="update",
            changed=changed,
            version=row["version"],
            actor=actor,
        )
        return _record(comp, {**current, **row}), event

    def _remove(
        self, conn: Connection, name: str, record_id: int, actor: str, version: int | None
    ) -> RecordEvent:
        comp = self.registry.get(name)
        current = self._current(conn, comp, record_id, version)
        self._check_referrers(conn, comp, record_id)
        conn.execute(comp.table.delete().where(comp.table.c.id == record_id))
        return append_event(
            conn,
            component=comp.name,
            record_id=record_id,
            op="delete",
            changed=[],
            version=current["version"] + 1,
            actor=actor,
        )

    def _current(
        self, conn: Connection, comp: Component, record_id: int, version: int | None
    ) -> dict[str, Any]:
        # FOR UPDATE: PostgreSQL's READ COMMITTED would otherwise let two writers pass the
        # version check together; SQLite's BEGIN IMMEDIATE already excludes them.
        query = sa.select(comp.table).where(comp.table.c.id == record_id).with_for_update()
        row = conn.execute(query).mappings().first() if 0 < record_id <= MAX_ID else None
        if row is None:
            raise record_missing(comp.name, record_id)
        if version is not None and row["version"] != version:
            raise Conflict(
                f"{comp.name} record {record_id} was changed by {row['updated_by']} "
                f"(it is at version {row['version']}, you had version {version}); "
                "reload it and retry",
                field="version",
            )
        return dict(row)

    def _check_links(
        self, conn: Connection, comp: Component, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Referenced records and files must exist; errors are by field (and row)."""
        errors: dict[str, list[str]] = {}
        for fname, f in comp.definition.stored_fields().items():
            if f.type not in ("reference", "file") and not (
                f.type == "array" and f.of in ("reference", "file")
            ):
                continue
            wanted: dict[Any, list[int]] = {}
            for i, row in enumerate(rows):
                value = row.get(fname)
                for v in (
                    (value if isinstance(value, list) else [value]) if value is not None else []
                ):
                    wanted.setdefault(v, []).append(i)
            if not wanted:
                continue
            kind = f.of if f.type == "array" else f.type
            found = self._existing(conn, kind or "", f.to, list(wanted))
            for value, indexes in wanted.items():
                what = f"{f.to} record {value}" if kind == "reference" else f"file {value}"
                problem = f"{what} does not exist" if value not in found else None
                if problem is None and kind == "file":
                    problem = self._file_problem(f, value)
                for i in indexes if problem else ():
                    key = f"row {i + 1}.{fname}" if len(rows) > 1 else fname
                    errors.setdefault(key, []).append(problem or "")
        if errors:
            raise ValidationError(errors, where=comp.name)

    def _file_problem(self, field: FieldDef, file_id: str) -> str | None:
        """Whether a stored file breaks the field's ``accept`` or ``max_size``."""
        if self.files is None or (field.accept is None and field.max_size is None):
            return None
        from .files.limits import check_accept, parse_size

        info = self.files().stat(file_id)
        try:
            check_accept(info.media_type, info.name, field.accept)
        except ValidationError as exc:
            return f"file {info.name!r}: {next(iter(exc.errors.values()))[0]}"
        if field.max_size is not None and info.size > parse_size(field.max_size):
            limit = field.max_size
            return f"file {info.name!r} is {info.size} bytes, over this field's limit of {limit}"
        return None

    def _existing(
        self, conn: Connection, kind: str, target: str | None, values: list[Any]
    ) -> set[Any]:
        if kind == "file":
            if self.files is None:
                raise ValidationError(
                    {"": ["file fields need a file store, and none is configured"]}
                )
            return self.files().exists(values)
        table = self.registry.get(target or "").table
        found: set[Any] = set()
        for start in range(0, len(values), 900):
            chunk = values[start : start + 900]
            found |= set(conn.execute(sa.select(table.c.id).where(table.c.id.in_(chunk))).scalars())
        return found

    def _check_referrers(self, conn: Connection, comp: Component, record_id: int) -> None:
        for other in self.registry.all().values():
            for fname, f in other.definition.stored_fields().items():
                if f.type == "reference" and f.to == comp.name:
                    col = other.table.c[fname]
                    n = conn.execute(
                        sa.select(sa.func.count()).where(col == record_id)
                    ).scalar_one()
                    if n:
                        raise Conflict(
                            f"{comp.name} record {record_id} is referenced by {n} {other.name} "
                            f"record(s) through {other.name}.{fname}; change or delete those first",
                            field=None,
                        )

    # -- reads ------------------------------------------------------------------------
    def get(self, name: str, record_id: int) -> dict[str, Any]:
        """One record by id, or NotFound."""
        comp = self.registry.get(name)
        if not 0 < record_id <= MAX_ID:
            raise record_missing(name, record_id)
        with read_transaction(self.engine) as conn:
            row = (
                conn.execute(sa.select(comp.table).where(comp.table.c.id == record_id))
                .mappings()
                .first()
            )
        if row is None:
            raise record_missing(name, record_id)
        return _record(comp, row)

    def query(
        self,
        name: str,
        *,
        where: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        cursor: str | None = None,
        fields: Sequence[str] | None = None,
        total: bool = False,
    ) -> Page:
        """Records matching ``where``, ordered (ties by id), one page at a time.

        Paging is by ``offset`` or, for deep pages, by the ``cursor`` of the previous page.
        The total is counted only when asked for.
        """
        with read_transaction(self.engine) as conn:
            return self._query_on(conn, name, where, order_by, limit, offset, cursor, fields, total)

    def _query_on(
        self,
        conn: Connection,
        name: str,
        where: Mapping[str, Any] | None,
        order_by: str | Sequence[str] | None,
        limit: int,
        offset: int,
        cursor: str | None,
        fields: Sequence[str] | None,
        total: bool,
    ) -> Page:
        comp = self.registry.get(name)
        defn, table = comp.definition, comp.table
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_LIMIT:
            raise QueryError(f"limit: expected an integer from 1 to {MAX_LIMIT}, got {limit!r}")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise QueryError(f"offset: expected a non-negative integer, got {offset!r}")
        keys = parse_order(defn, order_by)
        condition = compile_where(table, defn, where)
        columns = _columns(comp, fields)
        needed = list(dict.fromkeys([*columns, *(k.name for k in keys)]))
        stmt = sa.select(*(table.c[c] for c in needed)).where(condition)
        if cursor:
            stmt = stmt.where(after(table, keys, decode_cursor(keys, cursor)))
        stmt = stmt.order_by(*order_clauses(table, keys)).offset(offset).limit(limit + 1)
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
        count = (
            conn.execute(
                sa.select(sa.func.count()).select_from(table).where(condition)
            ).scalar_one()
            if total
            else None
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(keys, rows[-1]) if more and rows else None
        items = [_record(comp, r, columns) for r in rows]
        return Page(items, next_cursor, None if count is None else int(count), columns)

    def count(self, name: str, *, where: Mapping[str, Any] | None = None) -> int:
        """How many records match ``where``."""
        comp = self.registry.get(name)
        condition = compile_where(comp.table, comp.definition, where)
        with read_transaction(self.engine) as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(comp.table).where(condition)
                ).scalar_one()
            )

    def aggregate(
        self,
        name: str,
        *,
        group_by: Sequence[str] = (),
        metrics: Mapping[str, str] | None = None,
        where: Mapping[str, Any] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Grouped metrics, e.g. ``metrics={"n": "count", "total": "sum(amount)"}``."""
        comp = self.registry.get(name)
        defn, table = comp.definition, comp.table
        metrics = metrics or {"count": "count"}
        for i, g in enumerate(group_by):
            field_of(defn, g, f"group_by[{i}]")
        groups = [table.c[g] for g in group_by]
        selected: list[Any] = list(groups)
        for label, spec in metrics.items():
            selected.append(_metric(comp, label, spec).label(label))
        # select_from: count(*) alone names no column, and without it the query has no FROM.
        stmt = (
            sa.select(*selected)
            .select_from(table)
            .where(compile_where(table, defn, where))
            .group_by(*groups)
        )
        if order_by:
            labels = {c.name for c in groups} | set(metrics)
            terms = []
            for i, raw in enumerate(order_by):
                key = raw.lstrip("-")
                if key not in labels:
                    raise QueryError(f"order_by[{i}]: {key!r} is neither a group nor a metric")
                term = sa.literal_column(key) if key in metrics else table.c[key]
                terms.append(term.desc() if raw.startswith("-") else term.asc())
            stmt = stmt.order_by(*terms)
        else:
            stmt = stmt.order_by(*groups)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(stmt.limit(limit)).mappings().all()
        return [dict(r) for r in rows]


def _metric(comp: Component, label: str, spec: str) -> sa.ColumnElement[Any]:
    match = _METRIC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise QueryError(
            f"metrics.{label}: expected count, sum(field), avg(field), min(field) "
            f"or max(field), got {spec!r}"
        )
    fn, fname = match.groups()
    if fn == "count" and fname is None:
        return sa.func.count()
    if fname is None:
        raise QueryError(f"metrics.{label}: {fn} needs a field, e.g. {fn}(amount)")
    f = field_of(comp.definition, fname, f"metrics.{label}")
    if fn in ("sum", "avg") and f.type not in ("integer", "number"):
        raise QueryError(f"metrics.{label}: {fn} needs a number field, {fname} is {f.type}")
    col = comp.table.c[fname]
    return sa.func.count(col) if fn == "count" else getattr(sa.func, fn)(col)


def _columns(comp: Component, fields: Sequence[str] | None) -> list[str]:
    stored = [*SYSTEM_FIELDS, *comp.definition.stored_fields()]
    if not fields:
        return stored
    for i, f in enumerate(fields):
        field_of(comp.definition, f, f"fields[{i}]")
    return ["id", *(f for f in fields if f != "id")]


def record_missing(name: str, record_id: int) -> NotFound:
    """The error for a record id that does not exist."""
    return NotFound(f"{name} record {record_id} does not exist")


def _record(
    comp: Component, row: Mapping[str, Any] | sa.RowMapping, columns: Sequence[str] | None = None
) -> dict[str, Any]:
    names = columns or [*SYSTEM_FIELDS, *comp.definition.stored_fields()]
    return {n: row.get(n) for n in names}


@contextmanager
def unique_conflicts(comp: Component, what: str = "this value") -> Iterator[None]:
    """Turn unique-index violations into :class:`Conflict` naming the field.

    Catches SQLAlchemy's ``IntegrityError`` and any driver's own (PEP 249 names it
    ``IntegrityError``; bulk writes use psycopg's COPY directly, outside SQLAlchemy);
    anything else, or a violation of no unique field, passes through.
    """
    try:
        yield
    except Exception as exc:
        integrity = any(cls.__name__ == "IntegrityError" for cls in type(exc).__mro__)
        fname = unique_field(comp.definition, str(getattr(exc, "orig", exc))) if integrity else None
        if fname is None:
            raise
        message = f"{comp.name}.{fname}: {what} is already used by another record"
        raise Conflict(message, field=fname) from exc


def unique_field(defn: ComponentDef, message: str) -> str | None:
    """Which unique field a database's unique-violation message is about."""
    for fname, f in defn.stored_fields().items():
        if not f.unique:
            continue
        if f"{defn.name}.{fname}" in message or f"ux_{defn.name}_{fname}" in message:
            return fname
    return None
