"""Input steps: where items come from (they read no source)."""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from .context import Chunks, StepCall


def action_model(call: StepCall) -> Chunks:
    """The record the dataflow was called with, else its inputs, as one item."""
    flow = call.flow
    yield [dict(flow.record) if flow.record is not None else dict(flow.inputs)]


def empty_model(call: StepCall) -> Chunks:
    """One item with each field of the component at its default (None without one)."""
    definition = call.flow.state.app.records.registry.get(call.component).definition
    yield [{name: f.default for name, f in definition.stored_fields().items()}]


def get_record(call: StepCall) -> Chunks:
    """The record whose id the expression gives."""
    record_id = as_id(call.eval(call.config.id), "id")
    yield [call.flow.state.writer.get(call.component, record_id)]


def query(call: StepCall) -> Chunks:
    """Matching records, one chunk per keyset page: never more than ``chunk_size`` held."""
    config, writer = call.config, call.flow.state.writer
    where = resolve(call, config.where)
    left = config.limit
    cursor: str | None = None
    while left is None or left > 0:
        size = config.chunk_size if left is None else min(config.chunk_size, left)
        page = writer.query(
            call.component, where=where, order_by=config.order_by, limit=size, cursor=cursor
        )
        if page.items:
            yield page.items
        if left is not None:
            left -= len(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def resolve(call: StepCall, node: Any) -> Any:
    """``where`` with each ``{$expr: text}`` operand replaced by its value."""
    if isinstance(node, dict):
        if set(node) == {"$expr"}:
            return call.eval(node["$expr"])
        return {k: resolve(call, v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(call, v) for v in node]
    return node


def as_id(value: Any, what: str) -> int:
    """A record id from an expression's value (ValidationError naming ``what``)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError({what: [f"expected a record id, got {value!r}"]})
    try:
        return int(value)
    except ValueError:
        raise ValidationError({what: [f"expected a record id, got {value!r}"]}) from None
