"""Transform steps: items in, items out (map, filter, join, lookup, group_by, distinct,
expand, calculate)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ValidationError
from .context import Chunk, Chunks, Item, StepCall

_METRIC = re.compile(r"^\s*(count|sum|avg|min|max)\s*(?:\(\s*([A-Za-z_][A-Za-z0-9_]*)?\s*\))?\s*$")


def map_items(call: StepCall) -> Chunks:
    """Each item to its mapped fields (added to the item with ``keep``)."""
    fields, keep = call.config.fields, call.config.keep
    for _, items in call.items():
        out: Chunk = []
        for item in items:
            mapped = {name: call.eval(text, item=item) for name, text in fields.items()}
            out.append({**item, **mapped} if keep else mapped)
        yield out


def filter_items(call: StepCall) -> Chunks:
    """The items for which the expression holds."""
    for _, items in call.items():
        kept = [item for item in items if call.eval(call.config, item=item)]
        if kept:
            yield kept


def join(call: StepCall) -> Chunks:
    """Source items joined with those of step ``with`` (held in memory, by key)."""
    config = call.config
    right: dict[tuple[Any, ...], list[Item]] = {}
    for chunk in call.read(config.with_):
        for item in chunk:
            right.setdefault(tuple(item.get(k) for k in config.on.values()), []).append(item)
    for _, items in call.items():
        out: Chunk = []
        for item in items:
            matches = right.get(tuple(item.get(k) for k in config.on), [])
            if not matches and config.type == "left":
                out.append({**item, config.into: None} if config.into else dict(item))
            for match in matches:
                out.append({**item, config.into: match} if config.into else {**item, **match})
        if out:
            yield out


def lookup(call: StepCall) -> Chunks:
    """Each item with the record whose ``by`` field equals ``value`` (a query a chunk)."""
    config, writer = call.config, call.flow.state.writer
    for chunk, items in call.items():
        start = call.item_number
        values = [call.eval(config.value, item=item) for item in items]
        wanted = list({_hashable(v): v for v in values if v is not None}.values())
        found: dict[Any, Item] = {}
        for i in range(0, len(wanted), 1000):
            where = {config.by: {"in": wanted[i : i + 1000]}}
            page = writer.query(config.component, where=where, limit=10_000)
            for record in page.items:
                found.setdefault(_hashable(record[config.by]), record)
        out: Chunk = []
        for n, (item, value) in enumerate(zip(chunk, values, strict=True), start=start + 1):
            match = found.get(_hashable(value)) if value is not None else None
            if match is None and config.required:
                call.item_number, call.item = n, item
                message = f"no {config.component} record with {config.by} {value!r}"
                raise ValidationError({config.into: [message]})
            out.append({**item, config.into: match})
        yield out


def group_by(call: StepCall) -> Chunks:
    """One item per group of key values with its metrics (memory: one entry a group)."""
    config = call.config
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    specs = {label: _metric(spec) for label, spec in config.metrics.items()}
    for _, items in call.items():
        for item in items:
            key = tuple(_hashable(item.get(k)) for k in config.keys)
            acc = groups.setdefault(key, {"_n": 0, **dict.fromkeys(specs)})
            acc["_n"] += 1
            for label, (fn, field) in specs.items():
                acc[label] = _step(fn, acc.get(label), item.get(field) if field else 1, acc)
    out = []
    for key, acc in groups.items():
        row = dict(zip(config.keys, key, strict=True))
        for label, (fn, _) in specs.items():
            value = acc[label]
            if fn == "avg":
                value = value[0] / value[1] if value and value[1] else None
            row[label] = value
        out.append(row)
    if out:
        yield out


def _metric(spec: str) -> tuple[str, str | None]:
    match = _METRIC.match(spec)
    if match is None:  # checked at publish
        raise ValidationError({"metrics": [f"not a metric: {spec!r}"]})
    return match.group(1), match.group(2)


def _step(fn: str, acc: Any, value: Any, _: Any) -> Any:
    if fn == "count":
        return (acc or 0) + (1 if value is not None else 0)
    if value is None:
        return acc
    if fn == "sum":
        return (acc or 0) + value
    if fn == "avg":
        total, n = acc or (0, 0)
        return (total + value, n + 1)
    if acc is None:
        return value
    return min(acc, value) if fn == "min" else max(acc, value)


def _hashable(value: Any) -> Any:
    return (
        json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else value
    )


def distinct(call: StepCall) -> Chunks:
    """The first item of each distinct key (memory: one key a distinct item)."""
    fields = call.config.fields
    seen: set[Any] = set()
    for _, items in call.items():
        out: Chunk = []
        for item in items:
            key = tuple(_hashable(item.get(f)) for f in fields) if fields else _hashable(item)
            if key not in seen:
                seen.add(key)
                out.append(item)
        if out:
            yield out


def expand(call: StepCall) -> Chunks:
    """One item per element of the array field (an item without elements yields none)."""
    field, name = call.config.field, call.config.as_ or call.config.field
    for _, items in call.items():
        out: Chunk = []
        for item in items:
            elements = item.get(field)
            if elements is None:  # nothing to expand
                continue
            if not isinstance(elements, list):
                raise ValidationError({field: [f"expected an array, got {elements!r}"]})
            out.extend({**item, name: element} for element in elements)
        if out:
            yield out


def calculate(call: StepCall) -> Chunks:
    """One item of expressions over every item of the source (``items``)."""
    items = call.all_items()
    yield [{name: call.eval(text, items=items) for name, text in call.config.fields.items()}]
