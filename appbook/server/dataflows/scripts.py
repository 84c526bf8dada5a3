"""The ``script`` step: a function of the component's published ``<component>.py``.

The module is built from its published source in the process running the dataflow, a fresh
module object per run (no state leaks from one run to the next, and an edit on disk after
publishing changes nothing). REST calls of dataflows with scripts run them in a child
process with limits (:mod:`appbook.server.dataflows.isolate`), never in the server.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import DataflowFailed
from .context import Chunk, Chunks, Flow, StepCall

if TYPE_CHECKING:
    from ..engine import Appbook


def script_components(app: Appbook, component: str, name: str) -> set[str]:
    """The components whose scripts the dataflow runs, through the dataflows it calls."""
    from .runner import definition_of

    found: set[str] = set()
    seen: set[tuple[str, str]] = set()
    todo = [(component, name)]
    while todo:
        here = todo.pop()
        if here in seen:
            continue
        seen.add(here)
        for _, _, step in definition_of(app, *here).steps():
            if step.script is not None:
                found.add(here[0])
            if step.dataflow is not None:
                todo.append((step.dataflow.component or here[0], step.dataflow.name))
    return found


def read_sources(app: Appbook, components: set[str]) -> dict[str, bytes]:
    """The published ``<component>.py`` of each, read before the run's transaction opens
    (NotFound, saying how to publish it, for one that was not)."""
    return {c: app.source(c, f"{c}.py") for c in sorted(components)}


def module_of(flow: Flow, component: str) -> types.ModuleType:
    """``<component>.py`` as published, executed once per run."""
    modules = flow.state.modules
    if component not in modules:
        filename = f"{component}.py"
        source = flow.state.sources[component]
        module = types.ModuleType(f"appbook_script_{component}")
        module.__file__ = filename
        exec(compile(source, filename, "exec"), module.__dict__)  # the maker's own code
        modules[component] = module
    return modules[component]


def script(call: StepCall) -> Chunks:
    """``function(items)`` or ``function(items, context)`` on chunks of ``chunk_size``."""
    flow, config = call.flow, call.config
    function = getattr(module_of(flow, flow.component), config.function, None)
    if not callable(function):
        raise DataflowFailed(f"{flow.component}.py has no function {config.function!r}")
    context = {"inputs": flow.inputs, "record": flow.record, "actor": flow.state.app.actor}
    wants_context = _arity(function) >= 2
    pending: Chunk = []
    for chunk, _ in call.items():
        pending.extend(chunk)
        while len(pending) >= config.chunk_size:
            batch, pending = pending[: config.chunk_size], pending[config.chunk_size :]
            yield _call(function, batch, context, wants_context, config.function)
    if pending:
        yield _call(function, pending, context, wants_context, config.function)


def _arity(function: Callable[..., Any]) -> int:
    try:
        return len(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return 1


def _call(
    function: Callable[..., Any], items: Chunk, context: dict[str, Any], wants: bool, name: str
) -> Chunk:
    result = function(items, context) if wants else function(items)
    if isinstance(result, Mapping):
        result = [result]
    if not isinstance(result, list | tuple) or not all(isinstance(i, Mapping) for i in result):
        raise DataflowFailed(
            f"script {name} returned {type(result).__name__}, expected a list of items (dicts)"
        )
    return [dict(i) for i in result]
