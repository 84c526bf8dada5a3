"""Schema changes of component tables, computed and applied with Alembic.

Alembic's autogenerate comparison diffs the database against the tables built from the new
definitions; its operations then apply the difference on the caller's connection, inside the
publication's transaction. SQLite cannot alter columns or constraints in place, so those
changes go through Alembic's batch mode (copy-and-move of the table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.operations import Operations
from alembic.operations import ops as aops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

# Operations SQLite performs natively; everything else on an existing table needs batch mode.
_SQLITE_NATIVE = (aops.AddColumnOp, aops.CreateIndexOp, aops.DropIndexOp)
# Type changes that keep every stored value (storage class -> storage classes it may become).
_WIDENINGS = {("INTEGER", "FLOAT"), ("BIGINT", "FLOAT"), ("VARCHAR", "TEXT"), ("TEXT", "VARCHAR")}


@dataclass
class Plan:
    """The schema operations a publication needs, and what they would drop or narrow."""

    ops: list[aops.MigrateOperation] = field(default_factory=list)
    drops: list[tuple[str, str | None]] = field(default_factory=list)  # (table, column|None)
    retypes: list[tuple[str, str, str, str]] = field(default_factory=list)  # table, col, old, new

    def describe(self) -> list[str]:
        """One human line per operation, stored with the publication."""
        return [line for op in self.ops for line in _describe(op)]


def plan(
    conn: Connection,
    target: sa.MetaData,
    known: set[str],
    *,
    droppable: Callable[[str, str | None], bool],
) -> Plan:
    """Diff the database against ``target``.

    ``known`` names every table Appbook may touch (others in the database are ignored).
    ``droppable(table, column)`` says whether a table or column absent from ``target`` should
    be dropped; columns and tables it refuses are left in place with their data.
    """

    def include_name(name: str | None, type_: str, parents: Any) -> bool:
        return type_ != "table" or name in known

    context = MigrationContext.configure(
        conn, opts={"include_name": include_name, "compare_type": True}
    )
    script = produce_migrations(context, target)
    assert script.upgrade_ops is not None
    result = Plan()
    for op in script.upgrade_ops.ops:
        kept = _filter(op, result, droppable)
        if kept is not None:
            result.ops.append(kept)
    return result


def _filter(
    op: aops.MigrateOperation, result: Plan, droppable: Callable[[str, str | None], bool]
) -> aops.MigrateOperation | None:
    if isinstance(op, aops.DropTableOp):
        if not droppable(op.table_name, None):
            return None
        result.drops.append((op.table_name, None))
        return op
    if not isinstance(op, aops.ModifyTableOps):
        return op
    kept: list[aops.MigrateOperation] = []
    for sub in op.ops:
        if isinstance(sub, aops.DropColumnOp):
            if not droppable(op.table_name, sub.column_name):
                continue
            result.drops.append((op.table_name, sub.column_name))
        elif isinstance(sub, aops.AlterColumnOp):
            if sub.modify_nullable is not None and sub.modify_type is None:
                continue  # only system columns are NOT NULL; never loosen or tighten them
            if sub.modify_type is not None and not _widening(sub.existing_type, sub.modify_type):
                result.retypes.append(
                    (op.table_name, sub.column_name, _cls(sub.existing_type), _cls(sub.modify_type))
                )
        kept.append(sub)
    if not kept:
        return None
    op.ops = kept
    return op


def _cls(t: Any) -> str:
    return (
        ""
        if t is None
        else str(sa.types.to_instance(t).compile(dialect=_DEFAULT_DIALECT)).split("(")[0]
    )


_DEFAULT_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _widening(old: Any, new: Any) -> bool:
    a, b = _cls(old), _cls(new)
    a = "FLOAT" if a in ("DOUBLE PRECISION", "REAL", "DOUBLE") else a
    b = "FLOAT" if b in ("DOUBLE PRECISION", "REAL", "DOUBLE") else b
    return a == b or (a, b) in _WIDENINGS


def apply(conn: Connection, steps: Iterable[aops.MigrateOperation]) -> None:
    """Run the operations on ``conn`` (inside its transaction)."""
    context = MigrationContext.configure(conn)
    operations = Operations(context)
    for op in steps:
        if isinstance(op, aops.ModifyTableOps):
            _apply_table(conn, operations, op)
        else:
            operations.invoke(op)


def _apply_table(conn: Connection, operations: Operations, op: aops.ModifyTableOps) -> None:
    needs_batch = conn.dialect.name == "sqlite" and any(
        not isinstance(sub, _SQLITE_NATIVE) for sub in op.ops
    )
    if not needs_batch:
        for sub in op.ops:
            operations.invoke(sub)
        return
    with operations.batch_alter_table(op.table_name, recreate="always") as batch:
        for sub in op.ops:
            batch.invoke(sub)


def _describe(op: aops.MigrateOperation) -> list[str]:
    if isinstance(op, aops.ModifyTableOps):
        return [line for sub in op.ops for line in _describe(sub)]
    if isinstance(op, aops.CreateTableOp):
        return [f"create table {op.table_name}"]
    if isinstance(op, aops.DropTableOp):
        return [f"drop table {op.table_name}"]
    if isinstance(op, aops.AddColumnOp):
        return [f"add column {op.table_name}.{op.column.name} {_cls(op.column.type)}"]
    if isinstance(op, aops.DropColumnOp):
        return [f"drop column {op.table_name}.{op.column_name}"]
    if isinstance(op, aops.AlterColumnOp):
        return [f"change type of {op.table_name}.{op.column_name} to {_cls(op.modify_type)}"]
    if isinstance(op, aops.CreateIndexOp):
        kind = "unique index" if op.unique else "index"
        cols = ", ".join(getattr(c, "name", str(c)) for c in op.columns)
        return [f"create {kind} {op.index_name} on {op.table_name} ({cols})"]
    if isinstance(op, aops.DropIndexOp):
        return [f"drop index {op.index_name}"]
    if isinstance(op, aops.CreateForeignKeyOp):
        return [f"add foreign key {op.constraint_name} on {op.source_table} -> {op.referent_table}"]
    if isinstance(op, aops.DropConstraintOp):
        return [f"drop constraint {op.constraint_name} on {op.table_name}"]
    return [type(op).__name__]
