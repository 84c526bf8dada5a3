"""The ``dataflow`` step: another dataflow, in the same run and transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import DataflowFailed
from .context import MAX_DEPTH, Chunk, Chunks, Flow, StepCall


def call_dataflow(call: StepCall) -> Chunks:
    """Run the dataflow once (with ``items`` in its inputs' names) or once per item (the
    item as its record); its response becomes items."""
    config = call.config
    if config.per_item:
        for _, items in call.items():
            out: Chunk = []
            for item in items:
                inputs = {k: call.eval(v, item=item) for k, v in config.inputs.items()}
                out.extend(as_items(nested(call, inputs, dict(item))))
            yield out
        return
    every = call.all_items()
    inputs = {k: call.eval(v, items=every) for k, v in config.inputs.items()}
    yield as_items(nested(call, inputs, call.flow.record))


def nested(call: StepCall, inputs: dict[str, Any], record: dict[str, Any] | None) -> Any:
    """The response of the called dataflow."""
    from .runner import execute

    parent = call.flow
    if parent.depth + 1 >= MAX_DEPTH:
        raise DataflowFailed(f"dataflows call each other more than {MAX_DEPTH} deep (a loop?)")
    component = call.config.component or parent.component
    flow = Flow(parent.state, component, call.config.name, inputs, record, parent.depth + 1)
    execute(flow)
    return flow.response


def as_items(value: Any) -> Chunk:
    """A response as items: a list of mappings as is, a mapping as one, None as none,
    anything else as ``{"value": ...}``."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [dict(value)]
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return [dict(v) for v in value]
    return [{"value": value}]
