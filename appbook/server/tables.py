"""SQLAlchemy tables built from component definitions.

A component ``invoices`` is stored in table ``invoices``: the system columns, then one
column per stored field. Column types are wide on purpose (text without a length, double
precision numbers, JSON for arrays) so that tightening a rule such as ``max_length`` is a
validation change, not a migration. ``required`` is enforced by the engine, not a NOT NULL
constraint, so that making a field required never needs a table rewrite.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from .definitions.models import ComponentDef, FieldDef
from .systables import BigId, JSONType, UTCDateTime


def column_type(field: FieldDef) -> sa.types.TypeEngine[Any]:
    """The column type a field is stored in."""
    t = field.type
    if t in ("string", "email", "uri"):
        return sa.String()
    if t == "text":
        return sa.Text()
    if t in ("integer", "reference"):
        return sa.BigInteger()
    if t == "number":
        return sa.Float(precision=53)
    if t == "boolean":
        return sa.Boolean()
    if t == "date":
        return sa.Date()
    if t == "time":
        return sa.Time()
    if t == "datetime":
        return UTCDateTime()
    if t == "enum":
        ints = all(isinstance(v, int) for v in field.choice_values())
        return sa.Integer() if ints else sa.String()
    if t == "file":
        return sa.String(32)
    return JSONType  # array, json


def build_metadata(definitions: Mapping[str, ComponentDef]) -> sa.MetaData:
    """A MetaData holding one table per component, with indexes and foreign keys."""
    metadata = sa.MetaData()
    for defn in definitions.values():
        build_table(defn, metadata)
    return metadata


def build_table(defn: ComponentDef, metadata: sa.MetaData) -> sa.Table:
    """The table of one component inside ``metadata``."""
    columns: list[sa.Column[object]] = [
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    ]
    for name, field in defn.stored_fields().items():
        args: list[Any] = []
        if field.type == "reference" and field.to:
            args.append(sa.ForeignKey(f"{field.to}.id", name=ident("fk", defn.name, name)))
        columns.append(sa.Column(name, column_type(field), *args, nullable=True))
    table = sa.Table(defn.name, metadata, *columns)
    for name, field in defn.stored_fields().items():
        if field.unique:
            sa.Index(ident("ux", defn.name, name), table.c[name], unique=True)
        elif field.indexed or field.type == "reference":
            # (field, id) serves "order by field, id" keyset paging without a sort step;
            # references are indexed too: deletes check them and joins follow them.
            sa.Index(ident("ix", defn.name, name), table.c[name], table.c.id)
    return table


def ident(prefix: str, component: str, field: str) -> str:
    """A constraint or index name within PostgreSQL's 63-character limit."""
    name = f"{prefix}_{component}_{field}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54]}_{digest}"
