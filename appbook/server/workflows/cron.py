"""Cron triggers: start each published workflow's run at each of its due times, once.

For every enabled workflow whose trigger has ``cron``, a cursor ``cron:{component}:
{workflow}`` in ``appbook_cursors`` keeps the last due time dealt with (and the schedule it
was computed for). A sweep at ``now``:

* a workflow seen for the first time (or whose expression or time zone changed, or that
  was ``enabled: false`` and is enabled again) starts counting from ``now``: nothing is
  back-filled, and times while it was disabled are not "missed";
* due times in ``(last, now]`` no older than ``grace`` (60 s) are *on time* and each fires;
* older ones were *missed* (no server was up to fire them): ``missed: skip`` fires none,
  ``missed: run_once`` fires one run, for the latest of them;
* each firing is ``Runs.start(..., trigger="cron", trigger_key="cron:{component}:
  {workflow}:{due ISO}")``, so two servers (or a sweep repeated after a crash) start one
  run per due time; the cursors move only after the runs are started (all of a sweep's
  in one transaction).

A run's inputs are the workflow's ``inputs`` plus ``{"due": "<due time, ISO UTC>"}``; it
acts as :data:`CRON_ACTOR`. Due times come from :mod:`.schedule` (DST-correct).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..definitions.workflows import WorkflowDef
from .cursors import read_cursors, write_cursors
from .schedule import last_due, next_due

if TYPE_CHECKING:
    from ..engine import Appbook

log = logging.getLogger(__name__)
CRON_ACTOR = "cron"
GRACE = 60.0
PREFIX = "cron:"
FIRE_THREADS = 8  # runs of different schedules due at once, started side by side

__all__ = ["CRON_ACTOR", "GRACE", "CronSchedule", "Sweep", "schedules", "sweep"]


@dataclass(frozen=True)
class CronSchedule:
    """One workflow with a cron trigger."""

    component: str
    workflow: str
    definition: WorkflowDef
    cron: str
    timezone: str
    missed: str

    @property
    def cursor(self) -> str:
        """The name of its cursor in ``appbook_cursors``."""
        return f"{PREFIX}{self.component}:{self.workflow}"

    def key(self, due: datetime) -> str:
        """The trigger key of its firing at ``due``."""
        return f"{PREFIX}{self.component}:{self.workflow}:{due.isoformat()}"


@dataclass
class Sweep:
    """What one sweep started, and the next due time of any schedule (to wake for)."""

    started: list[dict[str, Any]]
    next_due: datetime | None


def schedules(app: Appbook) -> list[CronSchedule]:
    """Every published workflow with a cron trigger (``definition.enabled`` or not)."""
    found = []
    for name, component in sorted(app.registry.all().items()):
        for workflow, definition in (component.definition.workflows or {}).items():
            trigger = definition.trigger
            if trigger is not None and trigger.cron is not None:
                found.append(
                    CronSchedule(
                        name, workflow, definition, trigger.cron, trigger.timezone, trigger.missed
                    )
                )
    return found


def sweep(app: Appbook, now: datetime, *, grace: float = GRACE) -> Sweep:
    """Fire every due time of every schedule up to ``now`` (see the module docstring)."""
    cursors = read_cursors(app.engine, PREFIX)
    result = Sweep(started=[], next_due=None)
    moved: dict[str, Any] = {}  # cursor -> new value, written together after the runs
    plans: list[tuple[CronSchedule, Plan]] = []
    for schedule in schedules(app):
        cursor = cursors.get(schedule.cursor)
        if not schedule.definition.enabled:
            if isinstance(cursor, dict) and not cursor.get("disabled"):
                # Re-enabled later, it counts from then: times while off are not missed.
                moved[schedule.cursor] = {**cursor, "disabled": True}
            continue
        try:
            plan = _plan(schedule, cursor, now, grace)
        except Exception:  # one broken workflow must not stop the others
            log.exception("cron trigger of %s.%s failed", schedule.component, schedule.workflow)
            continue
        upcoming = plan.upcoming
        if upcoming is not None and (result.next_due is None or upcoming < result.next_due):
            result.next_due = upcoming
        if plan.due:
            plans.append((schedule, plan))
        elif plan.cursor is not None:
            moved[schedule.cursor] = plan.cursor
    try:
        for (schedule, plan), runs in zip(plans, _fire_all(app, plans), strict=True):
            if runs is not None:  # else it failed (logged) and is tried again next sweep
                result.started.extend(runs)
                moved[schedule.cursor] = plan.cursor
    finally:
        if moved:
            write_cursors(app.engine, moved)
    return result


@dataclass
class Plan:
    """What a sweep does for one schedule: the due times to fire, the cursor's new value
    (None: unchanged), the next due time after now."""

    due: list[datetime]
    cursor: Any
    upcoming: datetime | None


def _plan(schedule: CronSchedule, cursor: Any, now: datetime, grace: float) -> Plan:
    zone = ZoneInfo(schedule.timezone)
    seen = {"cron": schedule.cron, "timezone": schedule.timezone}
    fresh = not isinstance(cursor, dict) or cursor.get("disabled")
    if fresh or {k: cursor.get(k) for k in seen} != seen:
        restart = {**seen, "last": now.isoformat()}
        return Plan([], restart, next_due(schedule.cron, zone, now))
    last = newest = datetime.fromisoformat(cursor["last"])
    cutoff = now - timedelta(seconds=grace)
    due: list[datetime] = []
    upcoming = next_due(schedule.cron, zone, last)
    if upcoming is not None and upcoming <= cutoff:  # some were missed
        missed = last_due(schedule.cron, zone, cutoff)
        if missed is not None:
            newest = missed  # dealt with, fired or skipped
            if schedule.missed == "run_once":
                due.append(missed)
        upcoming = next_due(schedule.cron, zone, cutoff)
    while upcoming is not None and upcoming <= now:
        due.append(upcoming)
        newest = upcoming
        upcoming = next_due(schedule.cron, zone, upcoming)
    moved = {**seen, "last": newest.isoformat()} if newest > last else None
    return Plan(due, moved, upcoming)


def _fire_all(
    app: Appbook, plans: list[tuple[CronSchedule, Plan]]
) -> list[list[dict[str, Any]] | None]:
    """Each plan's runs (None where starting them failed); schedules due at the same time
    start side by side, so the last of many is not late by all the others' inserts."""
    if len(plans) <= 1:
        return [_fire(app, schedule, plan.due) for schedule, plan in plans]
    with ThreadPoolExecutor(min(FIRE_THREADS, len(plans)), "appbook-cron") as pool:
        return list(pool.map(lambda item: _fire(app, item[0], item[1].due), plans))


def _fire(app: Appbook, schedule: CronSchedule, due: list[datetime]) -> list[dict[str, Any]] | None:
    cron = app.as_user(CRON_ACTOR)
    try:
        return [
            cron.runs.start(
                schedule.component,
                schedule.workflow,
                inputs={**schedule.definition.inputs, "due": at.isoformat()},
                trigger="cron",
                trigger_key=schedule.key(at),
            )
            for at in due
        ]
    except Exception:
        log.exception("cron trigger of %s.%s failed", schedule.component, schedule.workflow)
        return None
