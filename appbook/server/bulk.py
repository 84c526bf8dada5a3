"""Bulk import and export of records (CSV and JSON lines).

An import validates every row first and reports problems by row number; then it writes all
rows in one transaction, or none.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, cast

from .bulk_write import allocate, event_rows, insert_rows
from .db import exclusive_lock, write_transaction
from .definitions.models import SYSTEM_FIELDS
from .errors import ValidationError
from .events import RecordEvent
from .events.outbox import OUTBOX_LOCK
from .payload import prepare
from .registry import Component
from .systables import EVENTS, utcnow

if TYPE_CHECKING:
    from .engine import Appbook

CHUNK = 2000
MAX_REPORTED = 100
FORMATS = ("csv", "jsonl")


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    created: int
    first_id: int | None
    last_id: int | None


def detect_format(name: str, format: str | None) -> str:
    """``csv`` or ``jsonl`` from an explicit format or a file name."""
    fmt = (format or Path(name).suffix.lstrip(".")).lower()
    fmt = {"json": "jsonl", "ndjson": "jsonl"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ValidationError(
            {"format": [f"expected csv or jsonl, got {fmt or 'nothing'!r} (from {name!r})"]}
        )
    return fmt


def read_rows(stream: BinaryIO | TextIO, fmt: str) -> Iterator[tuple[Mapping[str, Any], bool]]:
    """Rows of a CSV or JSON-lines stream, each with whether its values are text."""
    text: TextIO
    if isinstance(stream.read(0), bytes):
        text = io.TextIOWrapper(cast(BinaryIO, stream), encoding="utf-8-sig", newline="")
    else:
        text = cast(TextIO, stream)
    if fmt == "csv":
        for row in csv.DictReader(text):
            yield row, True
        return
    for n, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError({f"row {n}": [f"invalid JSON: {exc.msg}"]}) from None
        if not isinstance(value, dict):
            raise ValidationError({f"row {n}": ["expected a JSON object"]})
        yield value, False


def import_rows(
    app: Appbook,
    name: str,
    source: Iterable[Mapping[str, Any]] | str | Path | BinaryIO,
    *,
    format: str | None = None,
) -> ImportResult:
    """Validate every row, then insert all of them in one transaction (or none)."""
    comp = app.records.registry.get(name)
    if isinstance(source, str | Path):
        fmt = detect_format(str(source), format)
        with open(source, "rb") as stream:
            return _import(app, comp, read_rows(stream, fmt))
    if hasattr(source, "read"):
        fmt = detect_format(getattr(source, "name", ""), format)
        return _import(app, comp, read_rows(cast(BinaryIO, source), fmt))
    return _import(app, comp, ((row, False) for row in source))


def _import(
    app: Appbook, comp: Component, rows: Iterable[tuple[Mapping[str, Any], bool]]
) -> ImportResult:
    clean_rows: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for n, (row, from_text) in enumerate(rows, start=1):
        # In text formats an empty cell means "not given", so defaults apply.
        values = {
            k: v for k, v in row.items() if not (from_text and (k in SYSTEM_FIELDS or v == ""))
        }
        clean, problems = prepare(comp.definition, values, partial=False, from_text=from_text)
        for fname, messages in problems.items():
            if len(errors) < MAX_REPORTED:
                errors[f"row {n}.{fname}"] = messages
        clean_rows.append(clean)
    errors.update(_duplicates(comp, clean_rows, len(errors)))
    if errors:
        raise ValidationError(errors, where=f"import into {comp.name}: nothing was written")
    if not clean_rows:
        return ImportResult(0, None, None)
    return _write(app, comp, clean_rows)


def _duplicates(comp: Component, rows: list[dict[str, Any]], reported: int) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for fname, f in comp.definition.stored_fields().items():
        if not f.unique:
            continue
        seen: dict[Any, int] = {}
        for n, row in enumerate(rows, start=1):
            v = row.get(fname)
            if v is None:
                continue
            if v in seen and reported + len(errors) < MAX_REPORTED:
                errors[f"row {n}.{fname}"] = [f"{v!r} is already in row {seen[v]}"]
            seen.setdefault(v, n)
    return errors


def _write(app: Appbook, comp: Component, rows: list[dict[str, Any]]) -> ImportResult:
    actor, now, table = app.actor, utcnow(), comp.table
    columns = list(comp.definition.stored_fields())
    system = {
        "created_at": now,
        "created_by": actor,
        "updated_at": now,
        "updated_by": actor,
        "version": 1,
    }
    changed = sorted(k for k in columns if any(r.get(k) is not None for r in rows))
    with write_transaction(app.engine) as conn:
        app.records._check_links(conn, comp, rows)
        exclusive_lock(conn, OUTBOX_LOCK)  # as append_event does: seq order = commit order
        ids = allocate(conn, table, "id", len(rows))
        seqs = allocate(conn, EVENTS, "seq", len(rows))
        for start in range(0, len(rows), CHUNK):
            part = slice(start, start + CHUNK)
            records = [
                {"id": i, **system, **{c: r.get(c) for c in columns}}
                for i, r in zip(ids[part], rows[part], strict=True)
            ]
            insert_rows(conn, table, records, comp)
            insert_rows(conn, EVENTS, event_rows(comp, ids[part], seqs[part], changed, actor, now))
    app.bus.publish(
        [
            RecordEvent(
                seq=s,
                component=comp.name,
                record_id=i,
                op="create",
                changed=tuple(changed),
                version=1,
                actor=actor,
                at=now,
            )
            for s, i in zip(seqs, ids, strict=True)
        ]
    )
    return ImportResult(len(ids), ids[0], ids[-1])


def export_rows(
    app: Appbook,
    name: str,
    out: TextIO,
    *,
    format: str = "csv",
    where: Mapping[str, Any] | None = None,
) -> int:
    """Write matching records to ``out`` page by page; returns how many."""
    count = 0
    for text, rows in iter_export(app, name, format=format, where=where):
        out.write(text)
        count += rows
    return count


def iter_export(
    app: Appbook, name: str, *, format: str = "csv", where: Mapping[str, Any] | None = None
) -> Iterator[tuple[str, int]]:
    """The export as pieces of text (the CSV header, then one piece per page of 1,000 records)."""
    fmt = detect_format("", format)
    comp = app.records.registry.get(name)
    columns = [*SYSTEM_FIELDS, *comp.definition.stored_fields()]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    cursor = None
    while True:
        page = app.records.query(name, where=where, limit=1000, cursor=cursor)
        for item in page.items:
            if writer is not None:
                writer.writerow({k: _cell(v) for k, v in item.items()})
            else:
                buffer.write(json.dumps(item, default=_json_default) + "\n")
        yield buffer.getvalue(), len(page.items)
        buffer.seek(0)
        buffer.truncate()
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
