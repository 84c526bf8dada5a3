"""``import_file``: rows of a CSV, JSON (an array) or JSON-lines file of the file store,
in chunks; ``export_file``: items to such a file, stored once the run has committed (the
file store writes in a transaction of its own, which on SQLite could not start while the
run holds the write lock; a rolled-back run so stores nothing)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from ..errors import ValidationError
from .context import Chunk, Chunks, StepCall

CHUNK = 1000
SPOOL = 8 * 1024**2  # an export stays in memory up to this size, then goes to a temp file


def import_file(call: StepCall) -> Chunks:
    """The file's rows as items (CSV cells as text), ``CHUNK`` at a time."""
    files = call.flow.state.app.file_store
    file_id = str(call.eval(call.config.file))
    info = files.stat(file_id)
    fmt = call.config.format or PurePath(info.name).suffix.lstrip(".").lower()
    stream = io.BytesIO(files.get(file_id))
    rows = _rows(stream, fmt, info.name)
    chunk: Chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _rows(stream: io.BytesIO, fmt: str, name: str) -> Iterator[dict[str, Any]]:
    if fmt == "csv":
        yield from csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
        return
    if fmt == "json":
        data = _json(stream.getvalue().decode("utf-8-sig"), name)
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
    raise ValidationError({"file": [f"{name}: expected a csv, json or jsonl file, got {fmt!r}"]})


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError({"file": [f"{where}: invalid JSON: {exc.msg}"]}) from None


def export_file(call: StepCall) -> Chunks:
    """Write the items to a spooled file as they pass; store it after the commit."""
    from ..bulk import _cell, _json_default
    from ..expressions import render

    config, state = call.config, call.flow.state
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL, mode="w+b")  # noqa: SIM115
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
    name = render(config.name, call.flow.names())
    step = call.step.name

    def store() -> None:
        spool.seek(0)
        info = state.app.files.put(spool, name=name, folder=config.folder)
        state.files[step] = {**info.to_dict(), "items": count}
        text.close()

    state.writer.after_commit.append(store)
