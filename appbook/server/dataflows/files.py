"""``import_file``: rows of a CSV, JSON (an array) or JSON-lines file of the file store,
in chunks."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from ..errors import ValidationError
from .context import Chunk, Chunks, StepCall

CHUNK = 1000


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
