"""``import_file``: rows of a CSV, XLSX, JSON (an array) or JSON-lines file of the file
store, in chunks; ``export_file``: items to such a file, stored once the run has committed
(the file store writes in a transaction of its own, which on SQLite could not start while
the run holds the write lock; a rolled-back run so stores nothing). ``render_template``'s
PDFs are stored the same way (:func:`store_after_commit`)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path, PurePath
from typing import IO, Any

from ..errors import ValidationError
from .context import Chunk, Chunks, Item, StepCall

CHUNK = 1000
SPOOL = 8 * 1024**2  # a file stays in memory up to this size, then goes to a temp file
Written = Generator[Chunk, None, int]  # passes the chunks on, returns how many items it wrote
MEDIA = {
    "csv": "text/csv",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def import_file(call: StepCall) -> Chunks:
    """The file's rows as items (CSV cells as text, XLSX cells with their types),
    ``CHUNK`` at a time."""
    files = call.flow.state.app.file_store
    file_id = str(call.eval(call.config.file))
    info = files.stat(file_id)
    fmt = call.config.format or PurePath(info.name).suffix.lstrip(".").lower()
    with _spooled(files.open(file_id)) as stream:
        chunk: Chunk = []
        for row in _rows(stream, fmt, info.name, call.config.sheet):
            chunk.append(row)
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def _spooled(parts: Iterator[bytes]) -> IO[bytes]:
    """The decrypted file in a seekable spool (xlsx is a zip: read from its end)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL, mode="w+b")  # noqa: SIM115
    for part in parts:
        spool.write(part)
    spool.seek(0)
    return spool


def _rows(stream: IO[bytes], fmt: str, name: str, sheet: str | None) -> Iterator[Item]:
    if sheet is not None and fmt != "xlsx":
        raise ValidationError({"sheet": [f"{name}: only xlsx files have sheets, not {fmt!r}"]})
    if fmt == "csv":
        yield from csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
        return
    if fmt == "xlsx":
        from .xlsx import read_rows

        yield from read_rows(stream, name, sheet)
        return
    if fmt == "json":
        data = _json(stream.read().decode("utf-8-sig"), name)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValidationError({"file": [f"{name}: expected a JSON array of objects"]})
        yield from data
        return
    if fmt in ("jsonl", "ndjson"):
        for n, line in enumerate(io.TextIOWrapper(stream, encoding="utf-8-sig"), start=1):
            if line.strip():
                row = _json(line, f"{name} line {n}")
                if not isinstance(row, dict):
                    raise ValidationError({"file": [f"{name} line {n}: expected an object"]})
                yield row
        return
    raise ValidationError(
        {"file": [f"{name}: expected a csv, xlsx, json or jsonl file, got {fmt!r}"]}
    )


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError({"file": [f"{where}: invalid JSON: {exc.msg}"]}) from None


def export_file(call: StepCall) -> Chunks:
    """Write the items to a spooled file as they pass; store it after the commit."""
    config = call.config
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL, mode="w+b")  # noqa: SIM115
    write = _xlsx if config.format == "xlsx" else _text
    count = yield from write(call, spool)
    name = _name(call, call.flow.names())
    store_after_commit(call, spool, name, MEDIA[config.format], count)


def _text(call: StepCall, spool: IO[bytes]) -> Written:
    """Items to CSV, JSON or JSON lines in ``spool``; how many were written."""
    from ..bulk import _cell, _json_default

    config = call.config
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    writer: Any = None
    count = 0
    for chunk, items in call.items():
        for item in items:
            if config.format == "csv":
                if writer is None:
                    writer = csv.DictWriter(
                        text, fieldnames=config.fields or list(item), extrasaction="ignore"
                    )
                    writer.writeheader()
                writer.writerow({k: _cell(v) for k, v in item.items()})
            else:
                start = "" if config.format == "jsonl" else ("[" if count == 0 else ",\n")
                row = {k: item.get(k) for k in config.fields} if config.fields else item
                text.write(start + json.dumps(row, default=_json_default))
                if config.format == "jsonl":
                    text.write("\n")
            count += 1
        yield chunk
    if config.format == "json":
        text.write("[]" if count == 0 else "]")
    text.flush()
    text.detach()  # the spool stays open for the store
    return count


def _xlsx(call: StepCall, spool: IO[bytes]) -> Written:
    """Items to a write-only workbook in ``spool`` (the header is ``fields`` or the first
    item's keys); how many were written."""
    from .xlsx import SheetWriter

    config = call.config
    sheet = SheetWriter(config.sheet)
    header: list[str] | None = None
    count = 0
    try:
        for chunk, items in call.items():
            for item in items:
                if header is None:
                    header = list(config.fields or item)
                    sheet.append(header)
                sheet.append([item.get(k) for k in header])
                count += 1
            yield chunk
    except BaseException:  # GeneratorExit too: a later step failed and the run stopped
        sheet.discard()
        raise
    if header is None and config.fields:
        sheet.append(config.fields)
    sheet.save(spool)
    return count


def _name(call: StepCall, names: dict[str, Any]) -> str:
    from ..expressions import render

    return str(render(call.config.name, names))


def store_after_commit(
    call: StepCall,
    data: IO[bytes] | Path,
    name: str,
    media: str,
    count: int,
    *,
    many: bool = False,
) -> None:
    """Store ``data`` (a spool, closed afterwards, or a file on disk) as ``name`` in the
    step's ``folder`` once the run has committed, in the result's ``files`` under the
    step's name: the file's metadata and ``items``, or (``many``: one file per item)
    ``{"items": n, "files": [metadata, ...]}``."""
    state, folder, step = call.flow.state, call.config.folder, call.step.name

    def store() -> None:
        stream = data.open("rb") if isinstance(data, Path) else data
        try:
            stream.seek(0)
            info = state.app.files.put(stream, name=name, folder=folder, media_type=media)
        finally:
            stream.close()
        if not many:
            state.files[step] = {**info.to_dict(), "items": count}
            return
        entry = state.files.setdefault(step, {"items": 0, "files": []})
        entry["items"] += count
        entry["files"].append(info.to_dict())

    state.writer.after_commit.append(store)
