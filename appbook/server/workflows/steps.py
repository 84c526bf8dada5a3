"""What each kind of workflow step does, and the registry that finds it.

A step handler takes a :class:`StepCall` and returns an outcome ``{"outputs": …}``,
optionally with ``"next"`` (the step to go to), ``"status"`` (``"succeeded"`` ends the run,
``"waiting"`` or ``"approval"`` make it wait) and ``"wake"`` (when it is due again). It
raises :class:`StepFailed` (or any exception) for a failed attempt; retries and
``on_failure`` then decide. Handlers may set ``call.traceback`` and ``call.notebook_file``
(kept on the step run whether the attempt succeeds or fails).

The kinds that need nothing outside the engine are here. Others (``notebook``, ``notify``,
``dataflow``) are found through the ``appbook.steps`` entry point group, looked up lazily
the first time a step of that kind runs, so a plug-in package can add kinds too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from ..definitions.workflows import Step, duration_seconds
from ..errors import AppbookError
from ..expressions import evaluate

if TYPE_CHECKING:
    from ..engine import Appbook

ENTRY_POINTS = "appbook.steps"


class StepFailed(AppbookError):
    """A step did not do what it should (its message says why)."""

    code = "step_failed"


class StepTimedOut(StepFailed):
    """The step ran past its ``timeout`` and was stopped (a run it ends is ``timed_out``)."""

    code = "step_timed_out"


@dataclass
class StepCall:
    """One attempt at one step: what a handler needs to know and may leave behind."""

    app: Appbook  # acting as the user who started the run
    run: dict[str, Any]
    step: Step
    attempt: int
    visit: int  # 1 + how often this step already succeeded in this run (loops through goto)
    step_run_id: int
    now: datetime
    context: dict[str, Any]  # record, inputs, steps (earlier outputs), run
    traceback: str = ""
    notebook_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Set (from the heartbeat thread) once the run is cancelled while this step runs: a
    # long handler watches it and stops early (a notebook step interrupts its cell).
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def idempotency_key(self) -> str:
        """``run:step:visit``: the same for every attempt at this visit of the step (a retry,
        or a re-run after its worker crashed), so a side effect keyed by it happens once."""
        return f"{self.run['id']}:{self.step.name}:{self.visit}"

    @property
    def where(self) -> str:
        """How errors name this step."""
        return f"step {self.step.name}"

    @property
    def timeout(self) -> float | None:
        """The step's timeout in seconds, if it has one."""
        return duration_seconds(self.step.timeout) if self.step.timeout else None


Handler = Callable[[StepCall], dict[str, Any]]


def handler_for(kind: str) -> Handler:
    """The handler of a step kind (StepFailed if no installed package provides one)."""
    builtin = BUILTIN.get(kind)
    if builtin is not None:
        return builtin
    found = _plugins().get(kind)
    if found is None:
        raise StepFailed(f"{kind} steps cannot run here: no installed package provides them")
    loaded: Handler = found.load()
    return loaded


@cache
def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def _update(call: StepCall) -> dict[str, Any]:
    step = call.step
    values = (
        {step.update_field.field: step.update_field.value}
        if step.update_field is not None
        else dict(step.update_record or {})
    )
    if call.run["record_id"] is None:
        raise StepFailed("this run has no record to update")
    call.app[call.run["component"]].update(call.run["record_id"], values)
    return {"outputs": {"updated": sorted(values)}}


def _if(call: StepCall) -> dict[str, Any]:
    holds = bool(evaluate(call.step.if_ or "", call.context, where=call.where))
    return {"outputs": {"result": holds}, "next": call.step.then if holds else call.step.else_}


def _switch(call: StepCall) -> dict[str, Any]:
    value = evaluate(call.step.switch or "", call.context, where=call.where)
    return {"outputs": {"value": value}, "next": call.step.cases.get(str(value), call.step.default)}


def _wait(call: StepCall) -> dict[str, Any]:
    wait = call.step.wait
    assert wait is not None
    if wait.duration is not None:
        until = call.now + timedelta(seconds=duration_seconds(wait.duration))
    else:
        until = _as_datetime(evaluate(wait.until or "", call.context, where=call.where))
    return {"outputs": {"until": until.isoformat()}, "status": "waiting", "wake": until}


def _approval(call: StepCall) -> dict[str, Any]:
    approval = call.step.approval
    assert approval is not None
    deadline = (
        call.now + timedelta(seconds=duration_seconds(approval.deadline))
        if approval.deadline is not None
        else None
    )
    who = {"user": approval.user} if approval.user else {"role": approval.role}
    outputs = {"waiting_for": who, "deadline": deadline.isoformat() if deadline else None}
    return {"outputs": outputs, "status": "approval", "wake": deadline}


def _finish(call: StepCall) -> dict[str, Any]:
    return {"outputs": {}, "status": "succeeded"}


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise StepFailed(f"wait until: {value!r} is not a date and time") from None


BUILTIN: dict[str, Handler] = {
    "update_field": _update,
    "update_record": _update,
    "if": _if,
    "switch": _switch,
    "wait": _wait,
    "approval": _approval,
    "finish": _finish,
}
