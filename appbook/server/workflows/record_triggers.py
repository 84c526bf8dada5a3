"""Record-event triggers: start workflows ``on: create | update | delete`` of their component.

The outbox (``appbook_events``) is read after the seq kept in cursor ``triggers.events``
(``{"seq": N}``), page by page in seq order. Each event is matched against every enabled
workflow of its component whose trigger has ``on:``:

* the op is the trigger's;
* for an update with ``fields``, at least one of them is among the event's changed fields;
* ``when`` holds, evaluated over ``{"record": …, "event": …}``: ``record`` is the record as
  it is when the event is dispatched (it may be newer than the event), ``event`` the event
  (``seq``, ``component``, ``record_id``, ``op``, ``changed``, ``version``, ``actor``,
  ``at``). For a delete the record is gone: ``record`` is ``{"id": N}`` only.

A match starts a run acting as the event's actor, on the record (for a delete, on no
record, with ``inputs.record_id``), inputs = the workflow's ``inputs`` plus ``{"event":
…}``, ``trigger_key = "event:{seq}:{component}:{workflow}"``. The cursor moves after the
runs of a page are started, so a crash in between replays events whose runs exist already
(the key returns them): no event is missed or fires twice across restarts. A workflow
seen for the first time gets no back-fill: a database without the cursor starts at the
outbox's end.

Skipped, with a log line: a create/update whose record was deleted before dispatch, and a
``when`` that fails to evaluate. A database error stops the page at that event (the cursor
stays before it) and the next pass tries again.

**Loops.** A run that writes its own record would trigger its workflow again, forever. An
event is taken as a run's own write, and starts nothing for that workflow, when a step of
a run of the *same workflow on the same record* was running at the event's time (the
step run's ``started_at`` … ``finished_at``) and the run acts as the event's actor (a
run's steps write as the user who started it). Another user's write meanwhile still
starts a run, and so does the same user's write between steps or while the run waits;
a write by another workflow does too (chains A → B work; a cycle A → B → A is not
detected). Times come from each process's clock: servers and workers keep them in sync.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..db import read_transaction
from ..definitions.workflows import Trigger, WorkflowDef
from ..errors import NotFound
from ..events import RecordEvent, last_seq, read_outbox
from ..expressions import ExpressionError, evaluate
from ..systables import RUNS, STEP_RUNS
from .cursors import read_cursor, write_cursor

if TYPE_CHECKING:
    from ..engine import Appbook

log = logging.getLogger(__name__)
CURSOR = "triggers.events"
PAGE = 500

__all__ = ["CURSOR", "EventTrigger", "Pass", "dispatch", "event_triggers", "matches"]


@dataclass(frozen=True)
class EventTrigger:
    """One workflow started by record events of its component."""

    component: str
    workflow: str
    definition: WorkflowDef
    trigger: Trigger

    def key(self, event: RecordEvent) -> str:
        """The trigger key of its firing for ``event``."""
        return f"event:{event.seq}:{self.component}:{self.workflow}"


@dataclass
class Pass:
    """What one dispatch pass started, and whether the outbox has more after it."""

    started: list[dict[str, Any]]
    more: bool


def event_triggers(app: Appbook) -> dict[str, list[EventTrigger]]:
    """Enabled workflows with an ``on:`` trigger, by component."""
    found: dict[str, list[EventTrigger]] = {}
    for name, component in sorted(app.registry.all().items()):
        for workflow, definition in (component.definition.workflows or {}).items():
            trigger = definition.trigger
            if definition.enabled and trigger is not None and trigger.on is not None:
                found.setdefault(name, []).append(EventTrigger(name, workflow, definition, trigger))
    return found


def dispatch(app: Appbook, *, limit: int = PAGE) -> Pass:
    """Start the runs of up to ``limit`` events after the cursor, then move it past them."""
    cursor = read_cursor(app.engine, CURSOR)
    if not isinstance(cursor, dict):
        write_cursor(app.engine, CURSOR, {"seq": last_seq(app.engine)})
        return Pass(started=[], more=False)
    events = read_outbox(app.engine, int(cursor["seq"]), limit=limit)
    triggers = event_triggers(app) if events else {}
    started: list[dict[str, Any]] = []
    done = int(cursor["seq"])
    try:
        for event in events:
            for trigger in triggers.get(event.component, []):
                run = fire(app, trigger, event)
                if run is not None:
                    started.append(run)
            done = event.seq
    finally:  # on a database error, keep what was dealt with; the rest is read again
        if done != int(cursor["seq"]):
            write_cursor(app.engine, CURSOR, {"seq": done})
    return Pass(started=started, more=len(events) == limit)


def fire(app: Appbook, trigger: EventTrigger, event: RecordEvent) -> dict[str, Any] | None:
    """The run ``event`` starts for ``trigger``, or None if it does not match (or is the
    trigger's own run's write, or its record is gone)."""
    if not _op_matches(trigger.trigger, event):
        return None
    where = f"{trigger.component}.{trigger.workflow} trigger"
    if event.op == "delete":
        record: dict[str, Any] = {"id": event.record_id}
    else:
        try:
            record = app.records.get(event.component, event.record_id)
        except NotFound:
            log.info("%s: record %s is gone, event %s skipped", where, event.record_id, event.seq)
            return None
    try:
        if not matches(trigger.trigger, event, record, where=where):
            return None
    except ExpressionError as exc:
        log.warning("%s: event %s skipped: %s", where, event.seq, exc.message)
        return None
    if _own_write(app, trigger, event):
        return None
    inputs: dict[str, Any] = {**trigger.definition.inputs, "event": event.to_dict()}
    if event.op == "delete":
        inputs["record_id"] = event.record_id
    return app.as_user(event.actor).runs.start(
        trigger.component,
        trigger.workflow,
        record_id=None if event.op == "delete" else event.record_id,
        inputs=inputs,
        trigger="event",
        trigger_key=trigger.key(event),
    )


def matches(trigger: Trigger, event: RecordEvent, record: dict[str, Any], *, where: str) -> bool:
    """Whether ``event`` (on ``record``) starts a workflow with ``trigger``
    (ExpressionError if its ``when`` fails)."""
    if not _op_matches(trigger, event):
        return False
    if trigger.when is None:
        return True
    context = {"record": record, "event": event.to_dict()}
    return bool(evaluate(trigger.when, context, where=f"{where} when"))


def _op_matches(trigger: Trigger, event: RecordEvent) -> bool:
    if trigger.on != event.op:
        return False
    return not (
        event.op == "update"
        and trigger.fields is not None
        and not set(trigger.fields) & set(event.changed)
    )


def _own_write(app: Appbook, trigger: EventTrigger, event: RecordEvent) -> bool:
    """Whether a step of a run of this workflow on this record, acting as the event's
    actor, was running when the event happened (see "Loops" in the module docstring)."""
    during = sa.and_(
        STEP_RUNS.c.started_at <= event.at,
        sa.or_(
            STEP_RUNS.c.finished_at >= event.at,
            sa.and_(STEP_RUNS.c.finished_at.is_(None), STEP_RUNS.c.status == "running"),
        ),
    )
    query = (
        sa.select(RUNS.c.id)
        .join(STEP_RUNS, STEP_RUNS.c.run_id == RUNS.c.id)
        .where(
            RUNS.c.component == trigger.component,
            RUNS.c.workflow == trigger.workflow,
            RUNS.c.record_id == event.record_id,
            RUNS.c.created_by == event.actor,
            during,
        )
        .limit(1)
    )
    with read_transaction(app.engine) as conn:
        return conn.execute(query).first() is not None
