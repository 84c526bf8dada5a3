"""Runs and step runs, and the machine that moves a run from step to step.

A run is a row (``appbook_runs``) with a status and the name of the step to run next; each
attempt at a step is a row (``appbook_step_runs``). Every transition is a transaction: a
step starts (step run ``running``, the run leased to the worker doing it), then its outcome
and the run's next step are written together. While a step runs, a heartbeat keeps the
lease alive; a lease that runs out means the worker stopped, and whoever claims the run next
counts the step as a failed attempt (retries and ``on_failure`` decide), so no run stays
running forever. What each kind of step does is in :mod:`.steps`; handlers get an
idempotency key (``run:step:visit``) that stays the same across attempts, so a step retried
after a crash can tell it already acted.

Retries (count, backoff) and ``on_failure`` (fail, continue, goto) apply to every step.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..db import exclusive_lock, read_transaction, write_transaction
from ..definitions.workflows import Goto, Step, WorkflowDef, duration_seconds
from ..errors import Conflict, NotFound
from ..systables import RUNS, STEP_RUNS, utcnow
from . import approvals
from .heartbeat import heartbeating
from .steps import StepCall, StepFailed, StepTimedOut, handler_for

if TYPE_CHECKING:
    from ..engine import Appbook

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
LEASE_SECONDS = 60.0  # a worker heartbeats well within it; an expired lease means it stopped
INLINE = "inline"  # the owner of runs advanced by the caller itself (run_workflow, the CLI)

__all__ = ["INLINE", "LEASE_SECONDS", "TERMINAL", "Runs", "StepFailed"]


class Runs:
    """Start, advance, inspect and cancel runs of one data layer, acting as ``app.actor``.

    ``lease`` is how long a worker holds a run between heartbeats (executors and tests
    shorten it so a stopped worker's runs are recovered sooner)."""

    def __init__(self, app: Appbook, *, lease: float = LEASE_SECONDS) -> None:
        self.app = app
        self.lease = lease

    # -- starting and reading -----------------------------------------------------------
    def start(
        self,
        component: str,
        workflow: str,
        *,
        record_id: int | None = None,
        inputs: dict[str, Any] | None = None,
        trigger: str = "manual",
        trigger_key: str | None = None,
        hold: str | None = None,
    ) -> dict[str, Any]:
        """A new queued run of ``component``'s ``workflow`` (NotFound for an unknown one or
        record). ``trigger`` says what started it; a ``trigger_key`` (a cron due time, an
        outbox seq, a webhook delivery) starts at most one run: given again, it returns the
        run it started. ``hold`` starts it already leased to that owner, who advances it
        (no worker can take it in between)."""
        definition = self._workflow(component, workflow)
        if record_id is not None:
            self.app.records.get(component, record_id)  # NotFound names it
        if trigger_key is not None:
            existing = self._by_trigger_key(trigger_key)
            if existing is not None:
                return existing
        first = definition.steps()[0][1].name
        now = utcnow()
        try:
            run_id = self._insert_run(
                component, workflow, record_id, first, inputs, trigger, trigger_key, now, hold
            )
        except sa.exc.IntegrityError:
            existing = self._by_trigger_key(trigger_key) if trigger_key else None
            if existing is None:
                raise
            return existing  # another server fired the same trigger first
        return self.get(run_id)

    def _insert_run(
        self,
        component: str,
        workflow: str,
        record_id: int | None,
        first: str,
        inputs: dict[str, Any] | None,
        trigger: str,
        trigger_key: str | None,
        now: datetime,
        hold: str | None,
    ) -> int:
        held = (
            {
                "status": "running",
                "lease_owner": hold,
                "lease_until": now + timedelta(seconds=self.lease),
            }
            if hold is not None
            else {"status": "queued"}
        )
        with write_transaction(self.app.engine) as conn:
            run_id = conn.execute(
                RUNS.insert()
                .values(
                    component=component,
                    workflow=workflow,
                    record_id=record_id,
                    step=first,
                    inputs=dict(inputs or {}),
                    outputs={},
                    error="",
                    created_by=self.app.actor,
                    created_at=now,
                    updated_at=now,
                    trigger=trigger,
                    trigger_key=trigger_key,
                    **held,
                )
                .returning(RUNS.c.id)
            ).scalar_one()
        return int(run_id)

    def _by_trigger_key(self, key: str) -> dict[str, Any] | None:
        with read_transaction(self.app.engine) as conn:
            row = conn.execute(sa.select(RUNS).where(RUNS.c.trigger_key == key)).mappings()
            found = row.first()
        return None if found is None else dict(found)

    def get(self, run_id: int) -> dict[str, Any]:
        """The run, or NotFound."""
        with read_transaction(self.app.engine) as conn:
            row = conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFound(f"no workflow run {run_id}")
        return dict(row)

    def query(
        self,
        *,
        component: str | None = None,
        workflow: str | None = None,
        status: str | list[str] | None = None,
        record_id: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Runs, newest first, filtered by what is given; ``before`` (a run id) pages on."""
        query = sa.select(RUNS).order_by(RUNS.c.id.desc()).limit(max(1, min(limit, 1000)))
        if component is not None:
            query = query.where(RUNS.c.component == component)
        if workflow is not None:
            query = query.where(RUNS.c.workflow == workflow)
        if isinstance(status, str):
            query = query.where(RUNS.c.status == status)
        elif status:
            query = query.where(RUNS.c.status.in_(status))
        if record_id is not None:
            query = query.where(RUNS.c.record_id == record_id)
        if before is not None:
            query = query.where(RUNS.c.id < before)
        with read_transaction(self.app.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def retry(self, run_id: int) -> dict[str, Any]:
        """Queue a failed or timed-out run again at the step it failed in (Conflict for a
        run that did not fail). Its attempts go on counting from the last one."""
        now = utcnow()
        with write_transaction(self.app.engine) as conn:
            run = conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).mappings().first()
            if run is None:
                raise NotFound(f"no workflow run {run_id}")
            if run["status"] not in ("failed", "timed_out"):
                message = (
                    f"workflow run {run_id} has not failed ({run['status']}), nothing to retry"
                )
                raise Conflict(message, field=None)
            failed = conn.execute(
                sa.select(STEP_RUNS.c.step)
                .where(STEP_RUNS.c.run_id == run_id, STEP_RUNS.c.status == "failed")
                .order_by(STEP_RUNS.c.id.desc())
                .limit(1)
            ).scalar()
            conn.execute(
                RUNS.update()
                .where(RUNS.c.id == run_id)
                .values(
                    status="queued",
                    step=failed or run["step"],
                    error="",
                    finished_at=None,
                    wake_at=None,
                    updated_at=now,
                    dispatched_at=None,
                )
            )
        return self.get(run_id)

    def steps(self, run_id: int) -> list[dict[str, Any]]:
        """The step runs of a run, in order."""
        query = sa.select(STEP_RUNS).where(STEP_RUNS.c.run_id == run_id).order_by(STEP_RUNS.c.id)
        with read_transaction(self.app.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def cancel(self, run_id: int) -> dict[str, Any]:
        """Cancel a run that has not ended (Conflict if it has)."""
        now = utcnow()
        with write_transaction(self.app.engine) as conn:
            status = conn.execute(sa.select(RUNS.c.status).where(RUNS.c.id == run_id)).scalar()
            if status is None:
                raise NotFound(f"no workflow run {run_id}")
            if status in TERMINAL:
                raise Conflict(f"workflow run {run_id} has already ended ({status})", field=None)
            values = {"status": "cancelled", "finished_at": now, "wake_at": None}
            conn.execute(live(run_id, {**values, "updated_at": now}))
        return self.get(run_id)

    # -- who runs what: leases -----------------------------------------------------------
    def claim(
        self,
        owner: str,
        *,
        lease: float | None = None,
        now: datetime | None = None,
        run_id: int | None = None,
    ) -> dict[str, Any] | None:
        """Take one run that is due, for ``owner``, for ``lease`` seconds; None if none is.

        Due: queued; waiting with its time come; or running under a lease that expired (its
        worker stopped: :meth:`advance` then counts the step it was in as a failed attempt).
        A workflow's ``max_concurrent`` caps the runs held under live leases at once.
        ``run_id`` claims that run only (a Celery task names the run it is for).
        """
        moment = now or utcnow()
        due = self.due(moment)
        if run_id is not None:
            due = sa.and_(due, RUNS.c.id == run_id)
        lease = self.lease if lease is None else lease
        with write_transaction(self.app.engine) as conn:
            exclusive_lock(conn, "appbook.runs.claim")  # one claimer at a time per database
            candidates = conn.execute(
                sa.select(RUNS).where(due).order_by(RUNS.c.id).limit(100)
            ).mappings()
            for row in candidates:
                if not self._has_room(conn, row, moment):
                    continue
                conn.execute(
                    RUNS.update()
                    .where(RUNS.c.id == row["id"])
                    .values(
                        status="running",  # held: not due for anyone else while leased
                        lease_owner=owner,
                        lease_until=moment + timedelta(seconds=lease),
                        updated_at=moment,
                    )
                )
                return self.get_in(conn, int(row["id"]))
        return None

    @staticmethod
    def due(moment: datetime) -> sa.ColumnElement[bool]:
        """Runs a worker may take at ``moment``: queued; waiting with its time come; running
        under a lease that ran out."""
        return sa.or_(
            RUNS.c.status == "queued",
            sa.and_(RUNS.c.status == "waiting", RUNS.c.wake_at <= moment),
            sa.and_(RUNS.c.status == "running", RUNS.c.lease_until < moment),
        )

    def any_due(self, now: datetime | None = None) -> bool:
        """Whether some run is due: a cheap read before a claim takes the write lock."""
        query = sa.select(RUNS.c.id).where(self.due(now or utcnow())).limit(1)
        with read_transaction(self.app.engine) as conn:
            return conn.execute(query).first() is not None

    def heartbeat(self, run_id: int, owner: str, *, lease: float | None = None) -> None:
        """Extend ``owner``'s lease on a run; Conflict if another worker holds it now."""
        lease = self.lease if lease is None else lease
        moment = utcnow()
        with write_transaction(self.app.engine) as conn:
            result = conn.execute(
                RUNS.update()
                .where(RUNS.c.id == run_id, RUNS.c.lease_owner == owner)
                .values(lease_until=moment + timedelta(seconds=lease), updated_at=moment)
            )
            if not result.rowcount:
                raise Conflict(f"workflow run {run_id} is not leased to {owner}", field=None)

    def has_ended(self, run_id: int) -> bool:
        """Whether the run has ended (a cancel while one of its steps runs, say)."""
        query = sa.select(RUNS.c.status).where(RUNS.c.id == run_id)
        with read_transaction(self.app.engine) as conn:
            return conn.execute(query).scalar() in TERMINAL

    def _has_room(self, conn: Any, row: Any, moment: datetime) -> bool:
        try:
            cap = self._workflow(row["component"], row["workflow"]).max_concurrent
        except NotFound:
            return True  # unpublished since: advance fails it with the reason
        if cap is None:
            return True
        held = conn.execute(
            sa.select(sa.func.count()).where(
                RUNS.c.component == row["component"],
                RUNS.c.workflow == row["workflow"],
                RUNS.c.id != row["id"],
                RUNS.c.lease_until >= moment,
                RUNS.c.status.not_in(TERMINAL),
            )
        ).scalar_one()
        return int(held) < cap

    @staticmethod
    def get_in(conn: Any, run_id: int) -> dict[str, Any]:
        """The run as ``conn`` sees it."""
        return dict(conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).mappings().one())

    # -- the machine -----------------------------------------------------------------
    def advance(
        self,
        run_id: int,
        *,
        now: datetime | None = None,
        owner: str | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Run steps until the run ends or waits; the run as it stands then. ``owner`` is the
        worker doing it (the lease it holds); by default the caller itself. When ``stop``
        says so between two steps (the worker is shutting down), the run goes back to the
        queue for another worker, its finished steps kept.

        A step left ``running`` by a worker that stopped is first counted as a failed
        attempt, so its retries and ``on_failure`` decide, and no run stays running forever.
        """
        owner = owner or INLINE
        try:
            return self._advance(run_id, now, owner, stop)
        except NotFound as exc:  # its workflow (or component) is no longer published
            run = self.get(run_id)  # NotFound for an unknown run goes to the caller
            message = f"{exc.message}: the run cannot go on"
            moment = now or utcnow()
            with write_transaction(self.app.engine) as conn:
                values = {"status": "failed", "error": message, "finished_at": moment}
                conn.execute(live(run_id, {**values, "updated_at": moment}))
            return self._release(self.get(int(run["id"])), owner)

    def _advance(
        self,
        run_id: int,
        now: datetime | None,
        owner: str,
        stop: Callable[[], bool] | None,
    ) -> dict[str, Any]:
        self._recover(run_id, now or utcnow())
        while True:
            run = self.get(run_id)
            if run["status"] in TERMINAL:
                return self._release(run, owner)
            moment = now or utcnow()
            due = run["wake_at"] is None or run["wake_at"] <= moment
            pending = approvals.pending(self, run_id) if run["status"] == "waiting" else None
            if pending is not None:  # an approval: a decision, or its deadline, moves it on
                if run["wake_at"] is None or not due:
                    return self._release(run, owner)
                approvals.expire(self, run, pending, moment)
                continue
            if run["status"] == "waiting" and not due:
                return self._release(run, owner)
            if run["step"] is None:  # a wait was the last step, and it is over
                self._end(run["id"], "succeeded", moment)
                continue
            if stop is not None and stop():
                return self._requeue(run, owner)
            self._step(run, moment, owner)

    # -- approvals (see :mod:`.approvals`) ------------------------------------------------
    def decide(
        self,
        run_id: int,
        user: str,
        *,
        approve: bool,
        comment: str = "",
        advance: bool = True,
    ) -> dict[str, Any]:
        """``user`` approves or rejects the approval the run waits for, then the run goes
        on: here, until it ends or waits again, or (``advance=False``, for the server and
        app kernels, where no step may run) queued for an executor. Forbidden unless the
        step names that user, or its role is one of theirs; Conflict if the run waits for no
        approval."""
        approvals.decide(self, run_id, user, approve=approve, comment=comment)
        if not advance:
            return approvals.queue_unheld(self, run_id)
        return self.advance(run_id)

    def order(self, run: dict[str, Any]) -> list[Step]:
        """The run's workflow's steps, in order."""
        return [step for _, step in self._workflow(run["component"], run["workflow"]).steps()]

    def step_named(self, run: dict[str, Any], name: str) -> Step:
        """The step ``name`` of the run's workflow."""
        return next(s for s in self.order(run) if s.name == name)

    def _recover(self, run_id: int, now: datetime) -> None:
        stranded = self._stranded(run_id)
        if stranded is None:
            return
        run = self.get(run_id)
        definition = self._workflow(run["component"], run["workflow"])
        order = [step for _, step in definition.steps()]
        step = next(s for s in order if s.name == stranded["step"])
        message = f"step {step.name}: its worker stopped before it finished"
        self._failed(run, step, order, (stranded["id"], stranded["attempt"]), message, now)

    def _stranded(self, run_id: int) -> dict[str, Any] | None:
        query = sa.select(STEP_RUNS).where(
            STEP_RUNS.c.run_id == run_id, STEP_RUNS.c.status == "running"
        )
        with read_transaction(self.app.engine) as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    def _release(self, run: dict[str, Any], owner: str) -> dict[str, Any]:
        if run["lease_owner"] != owner:
            return run
        with write_transaction(self.app.engine) as conn:
            conn.execute(
                RUNS.update()
                .where(RUNS.c.id == run["id"], RUNS.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )
        return self.get(int(run["id"]))

    def _requeue(self, run: dict[str, Any], owner: str) -> dict[str, Any]:
        with write_transaction(self.app.engine) as conn:
            conn.execute(
                RUNS.update()
                .where(RUNS.c.id == run["id"], RUNS.c.lease_owner == owner)
                .where(RUNS.c.status.not_in(TERMINAL))
                .values(status="queued", lease_owner=None, lease_until=None, dispatched_at=None)
            )
        return self.get(int(run["id"]))

    def _end(self, run_id: int, status: str, now: datetime) -> None:
        with write_transaction(self.app.engine) as conn:
            values = {"status": status, "finished_at": now, "updated_at": now, "wake_at": None}
            conn.execute(live(run_id, values))

    def _step(self, run: dict[str, Any], now: datetime, owner: str) -> None:
        definition = self._workflow(run["component"], run["workflow"])
        order = [step for _, step in definition.steps()]
        step = next(s for s in order if s.name == run["step"])
        attempt, visit = self._attempts(run["id"], step.name)
        with write_transaction(self.app.engine) as conn:
            step_run_id = conn.execute(
                STEP_RUNS.insert()
                .values(
                    run_id=run["id"],
                    step=step.name,
                    attempt=attempt,
                    status="running",
                    idempotency_key=f"{run['id']}:{step.name}:{attempt}",
                    outputs={},
                    error="",
                    started_at=now,
                )
                .returning(STEP_RUNS.c.id)
            ).scalar_one()
            # Running means leased: if this process stops here, the lease runs out and
            # another worker's claim recovers the run.
            conn.execute(
                RUNS.update()
                .where(RUNS.c.id == run["id"])
                .values(
                    status="running",
                    wake_at=None,
                    updated_at=now,
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=self.lease),
                )
            )
        call = StepCall(
            app=self.app.as_user(run["created_by"]),
            run=run,
            step=step,
            attempt=attempt,
            visit=visit,
            step_run_id=int(step_run_id),
            now=now,
            context=self._context(run),
        )
        try:
            with heartbeating(self, int(run["id"]), owner, on_end=call.cancelled.set):
                outcome = handler_for(step.kind)(call)
        except Exception as exc:
            message = f"step {step.name}: {getattr(exc, 'message', None) or exc}"
            ending = "timed_out" if isinstance(exc, StepTimedOut) else "failed"
            self._failed(run, step, order, call, message, now, ending=ending)
            return
        self._finish_step(run, step, order, call, outcome, now)

    def _finish_step(
        self,
        run: dict[str, Any],
        step: Step,
        order: list[Step],
        call: StepCall,
        outcome: dict[str, Any],
        now: datetime,
    ) -> None:
        now = max(now, utcnow())  # the step took time: the run ends or goes on from here
        status = outcome.get("status")
        following = outcome.get("next") or step.next or after(order, step)
        values: dict[str, Any] = {
            "outputs": {**run["outputs"], step.name: outcome["outputs"]},
            "updated_at": now,
        }
        step_status = "succeeded"
        if status == "approval":
            # The run waits at this step; the step run stays open until someone decides.
            values.update(status="waiting", wake_at=outcome["wake"], step=step.name)
            step_status = "waiting"
        elif status == "succeeded" or (status is None and following is None):
            values.update(status="succeeded", step=None, finished_at=now)
        elif status == "waiting":
            # The wait is this step; when it is over the run goes on after it (or, if it
            # was the last step, succeeds: see advance).
            values.update(status="waiting", wake_at=outcome["wake"], step=following)
        else:
            values.update(status="running", step=following)
        with write_transaction(self.app.engine) as conn:
            conn.execute(
                STEP_RUNS.update()
                .where(STEP_RUNS.c.id == call.step_run_id)
                .values(
                    status=step_status,
                    outputs=outcome["outputs"],
                    finished_at=None if step_status == "waiting" else now,
                    traceback=call.traceback,
                    notebook_file=call.notebook_file,
                )
            )
            # A run cancelled while its step ran stays cancelled.
            conn.execute(live(run["id"], values))

    def _failed(
        self,
        run: dict[str, Any],
        step: Step,
        order: list[Step],
        call: StepCall | tuple[int, int],
        message: str,
        now: datetime,
        *,
        ending: str = "failed",
    ) -> None:
        """Count a failed attempt (``call``, or ``(step run id, attempt)`` of one whose
        worker stopped); retry it after its backoff, or apply ``on_failure``; a run it ends
        ends as ``ending`` (``timed_out`` after a step's timeout)."""
        if isinstance(call, StepCall):
            step_run_id, attempt = call.step_run_id, call.attempt
            extra = {"traceback": call.traceback, "notebook_file": call.notebook_file}
        else:
            (step_run_id, attempt), extra = call, {}
        now = max(now, utcnow())  # backoff and end times count from the failure
        values: dict[str, Any] = {"updated_at": now, "error": message}
        if attempt <= step.retries.count:
            backoff = duration_seconds(step.retries.backoff) * attempt
            values.update(status="waiting", wake_at=now + timedelta(seconds=backoff))
        elif step.on_failure == "continue" or isinstance(step.on_failure, Goto):
            target = (
                step.on_failure.goto if isinstance(step.on_failure, Goto) else after(order, step)
            )
            if target is None:
                values.update(status="succeeded", step=None, finished_at=now)
            else:
                values.update(status="running", step=target)
        else:
            values.update(status=ending, finished_at=now)
        # A step stopped because its run was cancelled is not a failure of the step.
        cancelled = isinstance(call, StepCall) and call.cancelled.is_set()
        with write_transaction(self.app.engine) as conn:
            conn.execute(
                STEP_RUNS.update()
                .where(STEP_RUNS.c.id == step_run_id)
                .values(
                    status="cancelled" if cancelled else "failed",
                    error=message,
                    finished_at=now,
                    **extra,
                )
            )
            conn.execute(live(run["id"], values))

    # -- helpers ------------------------------------------------------------------------
    def _workflow(self, component: str, workflow: str) -> WorkflowDef:
        definition = self.app.registry.get(component).definition
        workflows = definition.workflows or {}
        if workflow not in workflows:
            known = ", ".join(workflows) or "none"
            raise NotFound(f"component {component!r} has no workflow {workflow!r} ({known})")
        return workflows[workflow]

    def _attempts(self, run_id: int, step: str) -> tuple[int, int]:
        """(this attempt's number, this visit's number) for the next attempt at ``step``:
        a visit ends when the step succeeds, so attempts of one visit share its key."""
        query = sa.select(STEP_RUNS.c.status).where(
            STEP_RUNS.c.run_id == run_id, STEP_RUNS.c.step == step
        )
        with read_transaction(self.app.engine) as conn:
            statuses = list(conn.execute(query).scalars())
        return len(statuses) + 1, sum(s not in ("failed", "cancelled") for s in statuses) + 1

    def _context(self, run: dict[str, Any]) -> dict[str, Any]:
        record = (
            self.app.records.get(run["component"], run["record_id"])
            if run["record_id"] is not None
            else {}
        )
        return {"record": record, "inputs": run["inputs"], "steps": run["outputs"], "run": run}


def live(run_id: int, values: dict[str, Any]) -> sa.Update:
    """An update of a run that has not ended; one that ends it also lets go of its lease,
    in the same transaction, so no ended run looks held."""
    if values.get("status") in TERMINAL:
        values = {**values, "lease_owner": None, "lease_until": None}
    update = RUNS.update().where(RUNS.c.id == run_id, RUNS.c.status.not_in(TERMINAL))
    return update.values(**values)


def after(order: list[Step], step: Step) -> str | None:
    """The step after ``step`` in order, if any (only for steps that fall through)."""
    if step.kind in ("finish", "reset_to_draft"):
        return None
    index = order.index(step)
    return order[index + 1].name if index + 1 < len(order) else None
