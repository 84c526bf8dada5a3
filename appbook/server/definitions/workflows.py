"""The ``workflows`` section of a component: stages of steps, their kinds, and their checks.

```yaml
workflows:
  overdue:
    title: Mark unpaid invoices overdue
    trigger: {cron: "0 2 * * *", timezone: Europe/Paris, missed: run_once}
    max_concurrent: 1
    stages:
      - name: find
        steps:
          - name: scan
            notebook: notebooks/overdue.ipynb
            parameters: {days: "inputs.days"}
            retries: {count: 2, backoff: 30s}
            timeout: 10m
          - name: big
            if: "record.amount > 10000"
            then: approve
            else: mark
          - name: approve
            approval: {role: managers, deadline: 2d, on_expiry: reject}
          - name: mark
            update_field: {field: status, value: 4}
          - name: done
            finish: {}
```

Each step has exactly one kind key (:data:`STEP_KINDS`) and the common properties (retries,
timeout, what happens on failure, the next step). Steps run in order unless a step names
where to go. Shapes are checked by these models; :func:`check_workflows` checks what spans
them: step references, unreachable steps, expressions (compiled by
:mod:`appbook.server.expressions`, the evaluator workflows run them with), fields, cron
expressions and notebooks, each problem with its path so the loader gives its line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

STEP_KINDS = (
    "notebook", "update_record", "update_field", "if", "switch", "approval", "notify",
    "wait", "finish", "reset_to_draft", "dataflow",
)  # fmt: skip
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> float:
    """``30s``, ``10m``, ``2h``, ``1.5d`` as seconds (ValueError otherwise)."""
    match = DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30s, 10m, 2h or 1d")
    return float(match.group(1)) * SECONDS[match.group(2)]


Duration = StrictStr


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Retries(_Model):
    """How often to try a failed step again, and how long to wait first."""

    count: StrictInt = Field(0, ge=0, le=100)
    backoff: Duration = "10s"


class Goto(_Model):
    """Go on at another step."""

    goto: StrictStr


class UpdateField(_Model):
    """Set one field of the run's record."""

    field: StrictStr
    value: Any


class Approval(_Model):
    """Wait for a named user, or any user holding a role, to approve or reject."""

    user: StrictStr | None = None
    role: StrictStr | None = None
    deadline: Duration | None = None
    on_expiry: Literal["approve", "reject", "fail"] = "reject"
    rejected: StrictStr | None = Field(None, description="The step to go to when rejected.")

    @model_validator(mode="after")
    def _who(self) -> Approval:
        if (self.user is None) == (self.role is None):
            raise ValueError("an approval names exactly one of user or role")
        return self


class Email(_Model):
    """An e-mail (SMTP)."""

    to: StrictStr
    subject: StrictStr
    body: StrictStr = ""


class Webhook(_Model):
    """An HTTP POST."""

    url: StrictStr
    body: Any = None


class Notify(_Model):
    """Send an e-mail or call a webhook."""

    email: Email | None = None
    webhook: Webhook | None = None

    @model_validator(mode="after")
    def _one(self) -> Notify:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("notify has exactly one of email or webhook")
        return self


class Wait(_Model):
    """Wait for a duration, or until a time (an expression)."""

    duration: Duration | None = Field(None, alias="for")
    until: StrictStr | None = None

    @model_validator(mode="after")
    def _one(self) -> Wait:
        if (self.duration is None) == (self.until is None):
            raise ValueError("wait has exactly one of for or until")
        return self


class Step(_Model):
    """One step: exactly one kind key, plus common properties."""

    name: StrictStr = Field(pattern=r"^[a-z][a-z0-9_]*$")
    notebook: StrictStr | None = None
    parameters: dict[StrictStr, Any] = Field(default_factory=dict)
    update_record: dict[StrictStr, Any] | None = None
    update_field: UpdateField | None = None
    if_: StrictStr | None = Field(None, alias="if")
    then: StrictStr | None = None
    else_: StrictStr | None = Field(None, alias="else")
    switch: StrictStr | None = None
    cases: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    default: StrictStr | None = None
    approval: Approval | None = None
    notify: Notify | None = None
    wait: Wait | None = None
    finish: dict[StrictStr, Any] | None = None
    reset_to_draft: dict[StrictStr, Any] | None = None
    dataflow: StrictStr | None = None
    # common properties
    retries: Retries = Field(default_factory=Retries)
    timeout: Duration | None = None
    on_failure: Literal["fail", "continue"] | Goto = "fail"
    next: StrictStr | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = self.kinds()
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            raise ValueError(f"a step has exactly one of {', '.join(STEP_KINDS)} (found: {found})")
        return self

    def kinds(self) -> list[str]:
        """The kind keys set on this step."""
        values = {
            "notebook": self.notebook,
            "update_record": self.update_record,
            "update_field": self.update_field,
            "if": self.if_,
            "switch": self.switch,
            "approval": self.approval,
            "notify": self.notify,
            "wait": self.wait,
            "finish": self.finish,
            "reset_to_draft": self.reset_to_draft,
            "dataflow": self.dataflow,
        }
        return [k for k, v in values.items() if v is not None]

    @property
    def kind(self) -> str:
        """Which kind of step this is."""
        return self.kinds()[0]


class Stage(_Model):
    """A named group of steps, run in order."""

    name: StrictStr
    steps: list[Step] = Field(min_length=1)


class Trigger(_Model):
    """When a workflow starts by itself (manual runs are always possible)."""

    cron: StrictStr | None = None
    timezone: StrictStr = "UTC"
    missed: Literal["skip", "run_once"] = "skip"
    on: Literal["create", "update", "delete"] | None = None
    fields: list[StrictStr] | None = Field(None, description="Only when these fields change.")
    when: StrictStr | None = Field(None, description="Only when this expression holds.")
    webhook: StrictStr | None = None


class WorkflowDef(_Model):
    """A workflow: a title, what starts it, its stages."""

    title: StrictStr | None = None
    trigger: Trigger | None = None
    max_concurrent: StrictInt | None = Field(None, ge=1)
    inputs: dict[StrictStr, Any] = Field(default_factory=dict)
    stages: list[Stage] = Field(min_length=1)
    enabled: StrictBool = True

    def steps(self) -> list[tuple[list[str | int], Step]]:
        """(path within the workflow, step) in order."""
        return [
            (["stages", i, "steps", j], step)
            for i, stage in enumerate(self.stages)
            for j, step in enumerate(stage.steps)
        ]


Problems = Iterator[tuple[list[str | int], str]]


def check_workflows(
    workflows: Mapping[str, WorkflowDef],
    fields: Mapping[str, Any],
    folder: Path | None = None,
    dataflows: Collection[str] | None = None,
) -> Problems:
    """(path, problem) for every bad reference, unreachable step, expression, field, cron
    expression, duration, (when ``folder`` is known) missing notebook or (when
    ``dataflows`` is known: the component's) unknown dataflow."""
    for name, workflow in workflows.items():
        yield from _workflow(["workflows", name], workflow, fields, folder, dataflows)


def _workflow(
    path: list[str | int],
    workflow: WorkflowDef,
    fields: Mapping[str, Any],
    folder: Path | None,
    dataflows: Collection[str] | None,
) -> Problems:
    steps = workflow.steps()
    names: dict[str, list[str | int]] = {}
    for where, step in steps:
        if step.name in names:
            yield [*path, *where, "name"], f"step name {step.name!r} is used twice"
        names.setdefault(step.name, where)
    known = ", ".join(names)
    edges: dict[str, list[str]] = {}
    for i, (where, step) in enumerate(steps):
        here = [*path, *where]
        targets = list(_targets(step))
        for key, target in targets:
            if target not in names:
                yield [*here, *key], f"unknown step {target!r} (steps: {known})"
        follows = [t for _, t in targets]
        if _falls_through(step) and i + 1 < len(steps):
            follows.append(steps[i + 1][1].name)
        edges[step.name] = follows
        yield from _step(here, step, fields, folder)
        if step.dataflow is not None and dataflows is not None and step.dataflow not in dataflows:
            have = ", ".join(dataflows) or "none"
            yield [*here, "dataflow"], f"unknown dataflow {step.dataflow!r} (dataflows: {have})"
    yield from _unreachable(path, steps, edges)
    trigger = workflow.trigger
    if trigger is not None:
        yield from _trigger([*path, "trigger"], trigger, fields)


def _targets(step: Step) -> Iterator[tuple[list[str], str]]:
    if step.next is not None:
        yield ["next"], step.next
    if step.then is not None:
        yield ["then"], step.then
    if step.else_ is not None:
        yield ["else"], step.else_
    for case, target in step.cases.items():
        yield ["cases", case], target
    if step.default is not None:
        yield ["default"], step.default
    if isinstance(step.on_failure, Goto):
        yield ["on_failure", "goto"], step.on_failure.goto
    if step.approval is not None and step.approval.rejected is not None:
        yield ["approval", "rejected"], step.approval.rejected


def _falls_through(step: Step) -> bool:
    """Whether the step can go on to the next one in order."""
    if step.kind in ("finish", "reset_to_draft") or step.next is not None:
        return False
    if step.kind == "if":
        return step.then is None or step.else_ is None
    if step.kind == "switch":
        return step.default is None
    return True


def _unreachable(
    path: list[str | int], steps: list[tuple[list[str | int], Step]], edges: dict[str, list[str]]
) -> Problems:
    if not steps:
        return
    seen, todo = set(), [steps[0][1].name]
    while todo:
        name = todo.pop()
        if name in seen or name not in edges:
            continue
        seen.add(name)
        todo.extend(edges[name])
    for where, step in steps:
        if step.name not in seen:
            yield [*path, *where, "name"], f"step {step.name!r} can never run (no step leads to it)"


def _step(
    path: list[str | int], step: Step, fields: Mapping[str, Any], folder: Path | None
) -> Problems:
    for key in ("timeout",):
        value = getattr(step, key)
        if value is not None:
            yield from _duration([*path, key], value)
    yield from _duration([*path, "retries", "backoff"], step.retries.backoff)
    if step.if_ is not None:
        yield from _expression([*path, "if"], step.if_)
        if step.then is None and step.else_ is None:
            yield [*path, "if"], "an if step needs then, else or both"
    if step.switch is not None:
        yield from _expression([*path, "switch"], step.switch)
        if not step.cases:
            yield [*path, "cases"], "a switch step needs cases"
    if step.update_field is not None and step.update_field.field not in fields:
        yield [*path, "update_field", "field"], _unknown(step.update_field.field, fields)
    for name in step.update_record or {}:
        if name not in fields:
            yield [*path, "update_record", name], _unknown(name, fields)
    if step.approval is not None and step.approval.deadline is not None:
        yield from _duration([*path, "approval", "deadline"], step.approval.deadline)
    if step.wait is not None:
        if step.wait.duration is not None:
            yield from _duration([*path, "wait", "for"], step.wait.duration)
        if step.wait.until is not None:
            yield from _expression([*path, "wait", "until"], step.wait.until)
    if step.notebook is not None:
        if not step.notebook.endswith(".ipynb"):
            yield [*path, "notebook"], f"{step.notebook!r} is not a notebook (.ipynb)"
        elif folder is not None and not (folder / step.notebook).is_file():
            yield [*path, "notebook"], f"no notebook {step.notebook!r} beside the definition"
        elif folder is not None and not is_notebook((folder / step.notebook).read_bytes()):
            yield [*path, "notebook"], f"{step.notebook!r} is not a notebook (no JSON with cells)"


def is_notebook(content: bytes) -> bool:
    """Whether ``content`` is notebook JSON (a mapping with a list of cells); nbformat's full
    validation waits for the run, since importing it costs a second here."""
    try:
        data = json.loads(content)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("cells"), list)


def _trigger(path: list[str | int], trigger: Trigger, fields: Mapping[str, Any]) -> Problems:
    kinds = [k for k in ("cron", "on", "webhook") if getattr(trigger, k) is not None]
    if len(kinds) != 1:
        yield path, "a trigger has exactly one of cron, on, webhook"
    if trigger.cron is not None:
        from croniter import croniter

        if len(trigger.cron.split()) != 5 or not croniter.is_valid(trigger.cron):
            yield [*path, "cron"], f"{trigger.cron!r} is not a five-field cron expression"
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(trigger.timezone)
        except Exception:
            yield [*path, "timezone"], f"unknown time zone {trigger.timezone!r}"
    for i, name in enumerate(trigger.fields or []):
        if name not in fields:
            yield [*path, "fields", i], _unknown(name, fields)
    if trigger.fields is not None and trigger.on != "update":
        yield [*path, "fields"], "fields apply to on: update only"
    if trigger.when is not None:
        yield from _expression([*path, "when"], trigger.when)


def _duration(path: list[str | int], text: str) -> Problems:
    try:
        duration_seconds(text)
    except ValueError as exc:
        yield path, str(exc)


def _expression(path: list[str | int], text: str) -> Problems:
    """Expressions compile with the sandboxed evaluator they will run with."""
    from ..expressions import ExpressionError, compile_expression

    try:
        compile_expression(text)
    except ExpressionError as exc:
        yield path, exc.message


def _unknown(name: str, fields: Mapping[str, Any]) -> str:
    return f"unknown field {name!r} (fields: {', '.join(fields)})"
