"""Many record writes in one transaction: :meth:`RecordStore.transaction`.

A :class:`Writer` runs creates, updates, deletes and reads on one connection; the block
commits them together or, if it raises, none of them. Events go to the outbox with each
write (the outbox lock is then held to the commit, see :mod:`appbook.server.events.outbox`)
and reach the bus only after the commit. A transaction that writes very many records keeps
at most :data:`KEEP_EVENTS` of them to publish: subscribers fill the gap before the last one
from the outbox, so memory stays bounded.

``update_many`` is the batched path (dataflows' ``apply_deferred``): one ``SELECT … FOR
UPDATE`` per batch, one ``executemany`` per set of changed columns, the batch's events
written together.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .bulk_write import allocate, insert_rows
from .db import exclusive_lock, write_transaction
from .errors import ValidationError
from .events import RecordEvent
from .events.outbox import OUTBOX_LOCK
from .payload import prepare
from .systables import EVENTS, utcnow

if TYPE_CHECKING:
    from .records import Page, RecordStore

KEEP_EVENTS = 10_000


class Writer:
    """Record writes and reads inside one open transaction, acting as ``actor``."""

    def __init__(self, store: RecordStore, conn: Connection, actor: str) -> None:
        self.store, self.conn, self.actor = store, conn, actor
        # the newest only: publishing the last makes subscribers fill what was not kept
        self.events: deque[RecordEvent] = deque(maxlen=KEEP_EVENTS)
        self.after_commit: list[Callable[[], None]] = []

    def _keep(self, event: RecordEvent | None) -> None:
        if event is None:
            return
        self.events.append(event)

    def create(self, name: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a record (ValidationError, Conflict as :meth:`RecordStore.create`)."""
        record, event = self.store._insert(self.conn, name, values, self.actor)
        self._keep(event)
        return record

    def update(
        self, name: str, record_id: int, values: Mapping[str, Any], *, version: int | None = None
    ) -> dict[str, Any]:
        """Change fields of a record (as :meth:`RecordStore.update`)."""
        record, event = self.store._change(self.conn, name, record_id, values, self.actor, version)
        self._keep(event)
        return record

    def delete(self, name: str, record_id: int, *, version: int | None = None) -> None:
        """Delete a record (as :meth:`RecordStore.delete`)."""
        self._keep(self.store._remove(self.conn, name, record_id, self.actor, version))

    def get(self, name: str, record_id: int) -> dict[str, Any]:
        """A record by id, as this transaction sees it (NotFound otherwise)."""
        from .records import record_missing

        page = self.query(name, where={"id": record_id}, limit=1)
        if not page.items:
            raise record_missing(name, record_id)
        return page.items[0]

    def query(
        self,
        name: str,
        *,
        where: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> Page:
        """A page of records as this transaction sees them (see :meth:`RecordStore.query`)."""
        return self.store._query_on(
            self.conn, name, where, order_by, limit, 0, cursor, fields, False
        )

    def update_many(
        self, name: str, changes: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Apply ``(id, values)`` changes as one batch; ValidationError names the change
        (``change N``) and writes nothing of the batch. Returns the records as written."""
        from .records import _record, record_missing, unique_conflicts

        if not changes:
            return []
        comp = self.store.registry.get(name)
        table = comp.table
        errors: dict[str, list[str]] = {}
        cleaned: list[tuple[int, dict[str, Any]]] = []
        for n, (record_id, values) in enumerate(changes, start=1):
            clean, problems = prepare(comp.definition, values, partial=True)
            errors.update({f"change {n}.{k}": v for k, v in problems.items()})
            cleaned.append((record_id, clean))
        if errors:
            raise ValidationError(errors, where=name)
        ids = [i for i, _ in cleaned]
        rows = self.conn.execute(sa.select(table).where(table.c.id.in_(ids)).with_for_update())
        current = {int(r["id"]): dict(r) for r in rows.mappings()}
        now = utcnow()
        groups: defaultdict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        written: list[dict[str, Any]] = []
        touched: list[tuple[int, tuple[str, ...], int]] = []
        for record_id, clean in cleaned:
            if record_id not in current:
                raise record_missing(name, record_id)
            row = current[record_id]
            changed = tuple(sorted(k for k, v in clean.items() if row[k] != v))
            if changed:
                values = {k: clean[k] for k in changed}
                values.update(updated_at=now, updated_by=self.actor, version=row["version"] + 1)
                row.update(values)
                groups[changed].append({"_id": record_id, **values})
                touched.append((record_id, changed, row["version"]))
            written.append(_record(comp, row))
        self.store._check_links(self.conn, comp, [row for g in groups.values() for row in g])
        for changed, batch in groups.items():
            columns = [*changed, "updated_at", "updated_by", "version"]
            stmt = (
                table.update()
                .where(table.c.id == sa.bindparam("_id"))
                .values({c: sa.bindparam(c) for c in columns})
            )
            with unique_conflicts(comp):
                self.conn.execute(stmt, batch)
        self._events(name, touched, now)
        return written

    def _events(self, name: str, touched: list[tuple[int, tuple[str, ...], int]], at: Any) -> None:
        if not touched:
            return
        exclusive_lock(self.conn, OUTBOX_LOCK)
        seqs = allocate(self.conn, EVENTS, "seq", len(touched))
        rows = [
            {
                "seq": seq,
                "component": name,
                "record_id": record_id,
                "op": "update",
                "changed": list(changed),
                "version": version,
                "actor": self.actor,
                "at": at,
            }
            for seq, (record_id, changed, version) in zip(seqs, touched, strict=True)
        ]
        insert_rows(self.conn, EVENTS, rows)
        for row in rows:
            self._keep(RecordEvent(**{**row, "changed": tuple(row["changed"])}))


@contextmanager
def transaction(store: RecordStore, actor: str) -> Iterator[Writer]:
    """A :class:`Writer` on one write transaction; publish its events and run its
    ``after_commit`` callbacks once the transaction has committed."""
    with write_transaction(store.engine) as conn:
        writer = Writer(store, conn, actor)
        yield writer
    if writer.events:
        store.bus.publish(list(writer.events))
    for callback in writer.after_commit:
        callback()
