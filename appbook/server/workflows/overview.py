"""What people see of runs: runs and step runs as shown, who may decide, what applies.

The REST API, the CLI and the runs widget all show runs the same way through these helpers:
:func:`describe` (a run's public fields plus its duration and the approval it waits for),
:func:`describe_step`, :func:`actions` (which of approve, reject, retry, cancel apply to a
run for a user) and :func:`workflows` (every published workflow with its trigger and steps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, ValidationError
from ..systables import utcnow
from .runs import TERMINAL

if TYPE_CHECKING:
    from ..definitions.workflows import Approval
    from ..engine import Appbook

STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out")
RUN_FIELDS = (
    "id", "component", "workflow", "record_id", "status", "step", "inputs", "outputs", "error",
    "trigger", "created_by", "created_at", "updated_at", "finished_at", "wake_at",
)  # fmt: skip
STEP_FIELDS = (
    "id", "step", "attempt", "status", "outputs", "error", "traceback", "notebook_file",
    "started_at", "finished_at",
)  # fmt: skip


def statuses(values: str | Iterable[str] | None, *, where: str = "status") -> list[str] | None:
    """Run statuses from ``values`` (a comma-separated text, or several); ValidationError
    naming ``where`` for one that no run can have."""
    if values is None:
        return None
    texts = [values] if isinstance(values, str) else list(values)
    found = [v.strip() for text in texts for v in text.split(",") if v.strip()]
    unknown = [v for v in found if v not in STATUSES]
    if unknown:
        known = ", ".join(STATUSES)
        message = f"unknown run status {', '.join(map(repr, unknown))} (one of {known})"
        raise ValidationError({where: [message]})
    return found or None


def seconds(start: datetime | None, end: datetime | None, now: datetime) -> float | None:
    """How long from ``start`` to ``end`` (to ``now`` while it lasts), in seconds."""
    if start is None:
        return None
    return round(max(0.0, ((end or now) - start).total_seconds()), 3)


def format_duration(value: float | None) -> str:
    """``0.4s``, ``12s``, ``3m 05s``, ``2h 01m``, ``1d 03h`` (``-`` for none)."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f}s"
    whole = int(value)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def describe(
    run: dict[str, Any],
    steps: Sequence[dict[str, Any]] | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The run as shown: its public fields, ``duration`` (seconds since it was started,
    until it ended) and ``waiting_for`` (``{"step", "user" or "role", "deadline"}`` of the
    approval it waits for, else None); with ``steps``, those step runs described too."""
    moment = now or utcnow()
    shown = {key: run.get(key) for key in RUN_FIELDS}
    shown["duration"] = seconds(run["created_at"], run["finished_at"], moment)
    shown["waiting_for"] = None
    if steps is not None:
        shown["steps"] = [describe_step(s, now=moment) for s in steps]
        shown["waiting_for"] = waiting_for(run, steps)
    return shown


def describe_step(step: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """A step run as shown: its fields and ``duration``."""
    shown = {key: step.get(key) for key in STEP_FIELDS}
    shown["duration"] = seconds(step["started_at"], step["finished_at"], now or utcnow())
    return shown


def waiting_for(run: dict[str, Any], steps: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The approval a waiting run waits for (from its open step run), or None."""
    if run["status"] != "waiting":
        return None
    for step in steps:
        if step["status"] == "waiting":
            outputs = step.get("outputs") or {}
            who = dict(outputs.get("waiting_for") or {})
            return {"step": step["step"], **who, "deadline": outputs.get("deadline")}
    return None


def approval_of(app: Appbook, run: dict[str, Any], step: str) -> Approval | None:
    """The published approval of ``run``'s step ``step`` (None if it has none, or its
    workflow is no longer published)."""
    try:
        definition = app.registry.get(run["component"]).definition
    except NotFound:
        return None
    workflow = (definition.workflows or {}).get(run["workflow"])
    if workflow is None:
        return None
    found = next((s for _, s in workflow.steps() if s.name == step), None)
    return None if found is None else found.approval


def may_decide(app: Appbook, run: dict[str, Any], step: str, user: str) -> bool:
    """Whether ``user`` may approve or reject ``run``'s approval step ``step``: the user it
    names, or an enabled user holding its role (the rule :meth:`Runs.decide` applies)."""
    approval = approval_of(app, run, step)
    if approval is None:
        return False
    if approval.user is not None:
        return approval.user == user
    return approval.role is not None and any(
        u.name == user for u in app.users.with_role(approval.role)
    )


def actions(
    app: Appbook, run: dict[str, Any], steps: Sequence[dict[str, Any]], user: str
) -> list[str]:
    """What ``user`` can do to ``run`` now, of approve, reject, retry and cancel."""
    can: list[str] = []
    pending = waiting_for(run, steps)
    if pending is not None and may_decide(app, run, pending["step"], user):
        can += ["approve", "reject"]
    if run["status"] in ("failed", "timed_out"):
        can.append("retry")
    if run["status"] not in TERMINAL:
        can.append("cancel")
    return can


def workflows(app: Appbook) -> list[dict[str, Any]]:
    """Every published workflow, by component then name: title, whether enabled, its
    trigger, inputs, cap on concurrent runs and steps (name, kind, stage)."""
    found: list[dict[str, Any]] = []
    for name, comp in sorted(app.registry.all().items()):
        for key, flow in (comp.definition.workflows or {}).items():
            trigger = flow.trigger.model_dump(exclude_none=True) if flow.trigger else None
            steps = [
                {"name": step.name, "kind": step.kind, "stage": stage.name}
                for stage in flow.stages
                for step in stage.steps
            ]
            found.append(
                {
                    "component": name,
                    "name": key,
                    "title": flow.title,
                    "enabled": flow.enabled,
                    "trigger": trigger,
                    "inputs": dict(flow.inputs),
                    "max_concurrent": flow.max_concurrent,
                    "steps": steps,
                }
            )
    return found
