"""What a running dataflow carries: the run (one transaction, shared with the dataflows it
calls), one dataflow's execution, and one step's call."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..expressions import evaluate

if TYPE_CHECKING:
    from ..definitions.dataflows import Stage, Step
    from ..engine import Appbook
    from ..writer import Writer

Item = dict[str, Any]
Chunk = list[Item]
Chunks = Iterator[Chunk]
MAX_DEPTH = 8
_PATH = re.compile(r"^\s*([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\s*$")
_NONE = object()  # dataflows calling dataflows: deeper is surely a loop


@dataclass
class StepStats:
    """What went through one step: items in and out, the largest chunk it passed on."""

    stage: str
    step: str
    kind: str
    items_in: int = 0
    items_out: int = 0
    max_chunk: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the run log."""
        return {
            "stage": self.stage,
            "step": self.step,
            "kind": self.kind,
            "in": self.items_in,
            "out": self.items_out,
            "max_chunk": self.max_chunk,
        }


@dataclass
class RunState:
    """One run: its transaction, the form actions and deferred writes it collects."""

    app: Appbook
    writer: Writer
    actions: list[dict[str, Any]] = field(default_factory=list)
    deferred: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    peak_deferred: int = 0
    sources: dict[str, bytes] = field(default_factory=dict)  # published scripts
    modules: dict[str, ModuleType] = field(default_factory=dict)  # fresh per run
    stats: list[StepStats] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # export_file: stored


@dataclass
class Flow:
    """One dataflow executing inside a run."""

    state: RunState
    component: str
    name: str
    inputs: dict[str, Any]
    record: dict[str, Any] | None
    depth: int = 0
    response: Any = None
    responded: bool = False

    def names(self, **extra: Any) -> dict[str, Any]:
        """The names expressions see."""
        return {
            "inputs": self.inputs,
            "record": self.record,
            "actor": self.state.app.actor,
            **extra,
        }


@dataclass
class StepCall:
    """One step of one dataflow: its configuration, its source, the item at hand."""

    flow: Flow
    stage: Stage
    step: Step
    source: Chunks | None
    read: Callable[[str], Chunks]  # another step's items (join's second source)
    item_number: int = 0  # 1-based position of the item at hand in the step's input
    item: Mapping[str, Any] | None = None

    @property
    def config(self) -> Any:
        """The step's configuration."""
        return self.step.config

    @property
    def component(self) -> str:
        """The component the step works on (its ``component``, else the dataflow's)."""
        return getattr(self.config, "component", None) or self.flow.component

    def eval(self, text: str, **names: Any) -> Any:
        """An expression with the flow's names and ``names``; a missing key (``item.x`` of
        an item without ``x``) is an error too, as undefined names are (write
        ``item.x | default(none)`` to allow it)."""
        path = _PATH.match(text)
        if path is not None:  # `item.price`: read it without building a Jinja context
            scope = names[path[1]] if path[1] in names else self.flow.names().get(path[1])
            if isinstance(scope, Mapping) and path[2] in scope:
                return scope[path[2]]
        return evaluate(text, self.flow.names(**names))  # the runner names the step

    def items(self) -> Iterator[tuple[Chunk, Iterator[Item]]]:
        """Each chunk of the source with an iterator over its items that keeps
        ``item``/``item_number`` current (so an error names the item)."""
        for chunk in self.source or iter(()):
            yield chunk, self._track(chunk)

    def _track(self, chunk: Chunk) -> Iterator[Item]:
        for item in chunk:
            self.item_number += 1
            self.item = item
            yield item
        self.item = None

    def all_items(self) -> Chunk:
        """Every item of the source at once (kinds that need the whole input)."""
        return [item for chunk in self.source or iter(()) for item in chunk]
