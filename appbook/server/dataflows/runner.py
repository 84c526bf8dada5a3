"""Run a dataflow: every step lazily over chunks of items, all writes in one transaction.

Each step is a generator over its source's chunks, so a query of a million records flows
through map and deferred updates one page at a time. A step read by more than one later
step keeps its items (it is computed once); steps no other step reads are drained in
order, which runs everything. When a step fails the transaction rolls back and the error,
whatever its class, names the dataflow, stage, step and item.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..definitions.dataflows import INPUT_KINDS, DataflowDef
from ..errors import AppbookError, DataflowFailed, NotFound
from .context import Chunk, Chunks, Flow, RunState, StepCall, StepStats

if TYPE_CHECKING:
    from ..engine import Appbook

log = logging.getLogger(__name__)


@dataclass
class DataflowResult:
    """What a caller gets: the ``respond`` value and the form actions, plus the run log id."""

    value: Any = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    run_id: int | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    peak_deferred: int = 0  # most deferred updates queued at once
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # export_file step -> file

    def to_dict(self) -> dict[str, Any]:
        """JSON form (REST answers, the child process's report)."""
        return {
            "value": self.value,
            "actions": self.actions,
            "run_id": self.run_id,
            "steps": self.steps,
            "peak_deferred": self.peak_deferred,
            "files": self.files,
        }


def definition_of(app: Appbook, component: str, name: str) -> DataflowDef:
    """A published dataflow (NotFound naming those that exist)."""
    flows = app.records.registry.get(component).definition.dataflows or {}
    if name not in flows:
        known = ", ".join(flows) or "none"
        raise NotFound(f"no dataflow {name!r} in component {component} (dataflows: {known})")
    return flows[name]


def run(
    app: Appbook,
    component: str,
    name: str,
    *,
    inputs: dict[str, Any] | None = None,
    record: int | dict[str, Any] | None = None,
    via: str = "python",
) -> DataflowResult:
    """Run ``component``'s dataflow ``name`` as ``app``'s actor in one transaction, and log
    the run (succeeded or failed); raises the failing step's error, named."""
    from .log import log_run
    from .scripts import read_sources, script_components

    sources = read_sources(app, script_components(app, component, name))
    started, wall = time.time(), time.perf_counter()
    state: RunState | None = None
    try:
        with app.records.transaction(app.actor) as writer:
            state = RunState(app, writer, sources=sources)
            if isinstance(record, int):
                record = writer.get(component, record)
            flow = Flow(state, component, name, dict(inputs or {}), record)
            execute(flow)
    except Exception as exc:
        steps = [s.to_dict() for s in state.stats] if state else []
        try:
            log_run(app, component, name, via, started, wall, steps, _message(exc))
        except Exception:  # the database went away too: the run's own error matters more
            log.warning("could not log the failed run of %s.%s", component, name, exc_info=True)
        raise
    steps = [s.to_dict() for s in state.stats]
    run_id = log_run(app, component, name, via, started, wall, steps, None)
    for action in state.actions:
        if "export" in action:
            action["file"] = state.files[action.pop("export")]["id"]
    return DataflowResult(
        flow.response, state.actions, run_id, steps, state.peak_deferred, state.files
    )


def _message(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):  # a script's allocation over the child's limit
        return "ran out of memory"
    return exc.message if isinstance(exc, AppbookError) else f"{type(exc).__name__}: {exc}"


def execute(flow: Flow) -> None:
    """Run every step of ``flow`` (inside its run's transaction)."""
    from .kinds import KINDS
    from .outputs import flush

    definition = definition_of(flow.state.app, flow.component, flow.name)
    steps = definition.steps()
    sources: dict[str, str | None] = {}
    previous: str | None = None
    for _, _, step in steps:
        sources[step.name] = None if step.kind in INPUT_KINDS else (step.source or previous)
        previous = step.name
    readers = Counter(s for s in sources.values() if s is not None)
    readers.update(step.join.with_ for _, _, step in steps if step.join is not None)
    kept: dict[str, list[Chunk]] = {}
    makers: dict[str, Callable[[], Chunks]] = {}

    def read(name: str) -> Chunks:
        if readers[name] > 1:
            if name not in kept:
                kept[name] = list(makers[name]())
            return iter(kept[name])
        return makers[name]()

    for _, stage, step in steps:
        stats = StepStats(stage.name, step.name, step.kind)
        flow.state.stats.append(stats)

        def make(stage: Any = stage, step: Any = step, stats: StepStats = stats) -> Chunks:
            source = sources[step.name]
            upstream = _counted(read(source), stats) if source is not None else None
            call = StepCall(flow, stage, step, upstream, read)
            return _guarded(flow, call, KINDS[step.kind](call), stats)

        makers[step.name] = make
    for _, _, step in steps:
        if readers[step.name] == 0:
            for _ in read(step.name):
                pass
    flush(flow.state, 500)  # anything still queued (an apply_deferred read elsewhere)


def _counted(source: Chunks, stats: StepStats) -> Chunks:
    for chunk in source:
        stats.items_in += len(chunk)
        yield chunk


def _guarded(flow: Flow, call: StepCall, chunks: Chunks, stats: StepStats) -> Iterator[Chunk]:
    """The step's chunks, counted; an error raised by the step itself gets its name."""
    try:
        for chunk in chunks:
            stats.items_out += len(chunk)
            stats.max_chunk = max(stats.max_chunk, len(chunk))
            yield chunk
    except Exception as exc:
        raise _named(flow, call, exc) from (None if isinstance(exc, AppbookError) else exc)


def _named(flow: Flow, call: StepCall, exc: Exception) -> Exception:
    if getattr(exc, "dataflow_where", None) is not None:
        return exc  # named by the step that raised it, upstream of this one
    item = ""
    if call.item is not None:
        ident = call.item.get("id")
        item = f", item {call.item_number}" + (f" (id {ident})" if ident is not None else "")
    where = f"dataflow {flow.component}.{flow.name}, stage {call.stage.name}, "
    where += f"step {call.step.name}{item}"
    named = exc if isinstance(exc, AppbookError) else DataflowFailed(_message(exc))
    named.message = f"{where}: {named.message}"
    named.args = (named.message,)
    named.dataflow_where = {  # type: ignore[attr-defined]
        "dataflow": flow.name,
        "stage": call.stage.name,
        "step": call.step.name,
        "item": call.item_number if call.item is not None else None,
    }
    return named
