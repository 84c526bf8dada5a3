"""Compile the query language of records (``where``, ``order_by``, cursors) to SQL.

``where`` is a mapping of field -> condition, all of which must hold. A condition is a value
(equality) or a mapping of operator -> operand::

    {"amount": {"gt": 10}, "status": {"in": [0, 1]}, "title": {"contains": "paper"}}
    {"or": [{"status": 3}, {"not": {"due_date": {"is_null": True}}}]}

``contains`` and ``startswith`` are case-insensitive. Ordering is ascending with NULLs last
(descending is its exact reverse) and always ends with ``id``, so pages are stable and a
keyset cursor can resume after any row.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa

from .definitions.models import SYSTEM_FIELDS, ComponentDef, FieldDef
from .errors import QueryError
from .validation import Invalid, coerce

OPERATORS = (
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "not_in",
    "contains",
    "startswith",
    "is_null",
)
LOGICAL = ("and", "or", "not")
_SYSTEM_TYPES = {
    "id": FieldDef(type="integer"),
    "version": FieldDef(type="integer"),
    "created_at": FieldDef(type="datetime"),
    "updated_at": FieldDef(type="datetime"),
    "created_by": FieldDef(type="string"),
    "updated_by": FieldDef(type="string"),
}
_ORDERABLE_NOT = frozenset({"json", "array"})


def field_of(defn: ComponentDef, name: str, where: str) -> FieldDef:
    """The definition of a stored or system field, or a QueryError naming what exists."""
    if name in _SYSTEM_TYPES:
        return _SYSTEM_TYPES[name]
    field = defn.fields.get(name)
    if field is None or not field.stored:
        known = ", ".join([*SYSTEM_FIELDS, *defn.stored_fields()])
        raise QueryError(f"{where}: unknown field {name!r} of {defn.name} (fields: {known})")
    return field


def compile_where(
    table: sa.Table, defn: ComponentDef, where: Mapping[str, Any] | None
) -> sa.ColumnElement[bool]:
    """A SQL condition for ``where`` (``true`` when empty)."""
    if where is None:
        return sa.true()
    if not isinstance(where, Mapping):
        raise QueryError(
            f"where: expected a mapping of field -> condition, got {type(where).__name__}"
        )
    return _Compiler(table, defn).node(where, "where")


class _Compiler:
    def __init__(self, table: sa.Table, defn: ComponentDef) -> None:
        self.table, self.defn = table, defn

    def node(self, where: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
        parts = [self.entry(key, value, f"{path}.{key}") for key, value in where.items()]
        return sa.and_(sa.true(), *parts)

    def entry(self, key: str, value: Any, path: str) -> sa.ColumnElement[bool]:
        if key in ("and", "or"):
            if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
                raise QueryError(f"{path}: expected a list of conditions")
            parts = [self.node(v, f"{path}[{i}]") for i, v in enumerate(value)]
            return sa.and_(sa.true(), *parts) if key == "and" else sa.or_(sa.false(), *parts)
        if key == "not":
            if not isinstance(value, Mapping):
                raise QueryError(f"{path}: expected a condition")
            return sa.not_(self.node(value, path))
        field = field_of(self.defn, key, path)
        column = self.table.c[key]
        if not isinstance(value, Mapping) or (field.type == "json" and not _is_operators(value)):
            return self.compare(column, field, "eq", value, path)
        if not value:
            raise QueryError(f"{path}: empty condition; operators: {', '.join(OPERATORS)}")
        parts = [
            self.compare(column, field, op, operand, f"{path}.{op}")
            for op, operand in value.items()
        ]
        return sa.and_(*parts)

    def compare(
        self, col: sa.Column[Any], field: FieldDef, op: str, operand: Any, path: str
    ) -> sa.ColumnElement[bool]:
        if op not in OPERATORS:
            raise QueryError(f"{path}: unknown operator {op!r} (operators: {', '.join(OPERATORS)})")
        if op == "is_null":
            if not isinstance(operand, bool):
                raise QueryError(f"{path}: expected true or false, got {operand!r}")
            return col.is_(None) if operand else col.is_not(None)
        if field.type in ("json", "array") and op != "eq" and op != "ne":
            raise QueryError(f"{path}: {field.type} fields support only eq, ne and is_null")
        if op in ("in", "not_in"):
            if not isinstance(operand, list | tuple):
                raise QueryError(f"{path}: expected a list of values, got {operand!r}")
            values = [self.value(field, v, f"{path}[{i}]") for i, v in enumerate(operand)]
            return col.in_(values) if op == "in" else sa.or_(col.not_in(values), col.is_(None))
        if op in ("contains", "startswith"):
            if not isinstance(operand, str):
                raise QueryError(f"{path}: expected text, got {operand!r}")
            if field.type not in ("string", "text", "email", "uri", "enum"):
                raise QueryError(f"{path}: {op} applies to text fields, not {field.type}")
            text = sa.cast(col, sa.String) if field.type == "enum" else col
            if op == "contains":
                return text.icontains(operand, autoescape=True)
            return text.istartswith(operand, autoescape=True)
        if operand is None:
            if op in ("eq", "ne"):
                return col.is_(None) if op == "eq" else col.is_not(None)
            raise QueryError(f"{path}: cannot compare with null (use is_null)")
        value = self.value(field, operand, path)
        if field.type in ("json", "array"):
            expr = sa.cast(col, sa.Text) == sa.cast(sa.literal(json.dumps(value), sa.Text), sa.Text)
            return expr if op == "eq" else sa.not_(expr)
        return _COMPARE[op](col, value)

    def value(self, field: FieldDef, operand: Any, path: str) -> Any:
        if field.type == "json":
            return operand
        # Query values are not bound by min/max/length rules, only by the field's type.
        loose = FieldDef(type=field.type, choices=field.choices, to=field.to, of=field.of)
        try:
            return coerce(loose, operand)
        except Invalid as exc:
            raise QueryError(f"{path}: {exc}") from None


def _is_operators(value: Mapping[str, Any]) -> bool:
    return bool(value) and all(k in OPERATORS for k in value)


_COMPARE: dict[str, Callable[[sa.Column[Any], Any], sa.ColumnElement[bool]]] = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: sa.or_(c != v, c.is_(None)),
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
}


@dataclass(frozen=True)
class OrderKey:
    """One ordering column."""

    name: str
    descending: bool
    field: FieldDef


def parse_order(defn: ComponentDef, order_by: str | Sequence[str] | None) -> list[OrderKey]:
    """``["-due_date", "number"]`` -> keys, always ending with ``id``."""
    if order_by is None:
        order_by = []
    if isinstance(order_by, str):
        order_by = [s for s in order_by.split(",") if s.strip()]
    keys: list[OrderKey] = []
    for i, raw in enumerate(order_by):
        if not isinstance(raw, str) or not raw.strip("-+ "):
            raise QueryError(f"order_by[{i}]: expected a field name, optionally prefixed by -")
        text = raw.strip()
        name = text.lstrip("-+")
        field = field_of(defn, name, f"order_by[{i}]")
        if field.type in _ORDERABLE_NOT:
            raise QueryError(f"order_by[{i}]: cannot order by {field.type} field {name!r}")
        if any(k.name == name for k in keys):
            continue
        keys.append(OrderKey(name, text.startswith("-"), field))
    if not any(k.name == "id" for k in keys):
        keys.append(OrderKey("id", False, _SYSTEM_TYPES["id"]))
    return keys


def order_clauses(table: sa.Table, keys: Sequence[OrderKey]) -> list[sa.UnaryExpression[Any]]:
    """ORDER BY terms: ascending NULLS LAST, descending NULLS FIRST (its exact reverse)."""
    out = []
    for k in keys:
        col = table.c[k.name]
        if k.name == "id":
            out.append(col.desc() if k.descending else col.asc())
        else:
            out.append(col.desc().nulls_first() if k.descending else col.asc().nulls_last())
    return out


def after(
    table: sa.Table, keys: Sequence[OrderKey], values: Sequence[Any]
) -> sa.ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys`` (keyset paging)."""
    ors = []
    for i, key in enumerate(keys):
        ands = [_equal(_comparable(table, k), v) for k, v in zip(keys[:i], values[:i], strict=True)]
        beyond = _beyond(_comparable(table, key), key.descending, values[i])
        if beyond is not None:
            ors.append(sa.and_(*ands, beyond))
    condition = sa.or_(sa.false(), *ors)
    # The OR chain is exact but hides the first key's range from the planner, which then
    # scans its index from the start on every page; a redundant bound lets it seek. It is
    # exact where no NULL can follow the cursor: descending (NULLs come first) or a column
    # that is never NULL.
    first, value = keys[0], values[0]
    col = _comparable(table, first)
    if value is not None and first.descending:
        condition = sa.and_(col <= _plain(value), condition)
    elif value is not None and not table.c[first.name].nullable:
        condition = sa.and_(col >= _plain(value), condition)
    return condition


def _comparable(table: sa.Table, key: OrderKey) -> sa.ColumnElement[Any]:
    # Booleans have no < or > in SQLAlchemy; as integers they order false < true.
    col = table.c[key.name]
    return sa.cast(col, sa.Integer) if key.field.type == "boolean" else col


def _equal(col: sa.ColumnElement[Any], value: Any) -> sa.ColumnElement[bool]:
    return col.is_(None) if value is None else col == _plain(value)


def _beyond(
    col: sa.ColumnElement[Any], descending: bool, value: Any
) -> sa.ColumnElement[bool] | None:
    if not descending:
        return None if value is None else sa.or_(col > _plain(value), col.is_(None))
    return col.is_not(None) if value is None else col < _plain(value)


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def encode_cursor(keys: Sequence[OrderKey], row: Mapping[str, Any]) -> str:
    """An opaque cursor for the position after ``row``."""
    payload = {
        "o": [("-" if k.descending else "") + k.name for k in keys],
        "v": [_jsonable(row[k.name]) for k in keys],
    }
    return (
        base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )


def decode_cursor(keys: Sequence[OrderKey], cursor: str) -> list[Any]:
    """The row values a cursor stands for; it must come from the same ``order_by``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        order, values = payload["o"], payload["v"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise QueryError("cursor: not a cursor returned by a previous query") from None
    expected = [("-" if k.descending else "") + k.name for k in keys]
    if order != expected or len(values) != len(keys):
        raise QueryError(f"cursor: it was made for order_by {order}, not {expected}")
    try:
        return [
            None if v is None else coerce(FieldDef(type=k.field.type, choices=k.field.choices), v)
            for k, v in zip(keys, values, strict=True)
        ]
    except Invalid:
        raise QueryError("cursor: not a cursor returned by a previous query") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value
