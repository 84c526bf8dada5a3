"""Approval steps: who may decide, a decision taken once, and a deadline that expires.

An ``approval`` step leaves its step run ``waiting`` (see :mod:`.steps`); the run waits
until a user the step names (or a holder of its role) approves or rejects it, or until its
deadline, when ``on_expiry`` decides. A decision moves the run to the step after (approved)
or to ``rejected`` (else it fails); two decisions at the same moment are settled by a
compare and set on the step run, so one is taken and the other is told.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..db import read_transaction, write_transaction
from ..definitions.workflows import Step
from ..errors import Conflict, Forbidden
from ..systables import RUNS, STEP_RUNS, utcnow

if TYPE_CHECKING:
    from .runs import Runs


def decide(runs: Runs, run_id: int, user: str, *, approve: bool, comment: str = "") -> None:
    """Record ``user``'s decision on the approval run ``run_id`` waits for (Forbidden unless
    the step names that user or one of their roles; Conflict if nothing waits)."""
    run = runs.get(run_id)
    waiting = pending(runs, run_id) if run["status"] == "waiting" else None
    if waiting is None:
        raise Conflict(f"workflow run {run_id} is not waiting for an approval", field=None)
    step = runs.step_named(run, waiting["step"])
    assert step.approval is not None
    allowed = step.approval.user == user or (
        step.approval.role is not None
        and any(u.name == user for u in runs.app.users.with_role(step.approval.role))
    )
    if not allowed:
        who = step.approval.user or f"a user with role {step.approval.role!r}"
        raise Forbidden(f"step {step.name} waits for {who}, not {user!r}")
    decided(runs, run, step, waiting, user, approve, comment, utcnow())


def queue_unheld(runs: Runs, run_id: int) -> dict[str, Any]:
    """A run moved on by a decision, held by nobody, goes back to the queue."""
    with write_transaction(runs.app.engine) as conn:
        conn.execute(
            RUNS.update()
            .where(
                RUNS.c.id == run_id,
                RUNS.c.status == "running",
                RUNS.c.lease_owner.is_(None),
            )
            .values(status="queued", updated_at=utcnow(), dispatched_at=None)
        )
    return runs.get(run_id)


def decided(
    runs: Runs,
    run: dict[str, Any],
    step: Step,
    waiting: dict[str, Any],
    user: str,
    approve: bool,
    comment: str,
    now: datetime,
) -> None:
    """Write the decision on step run ``waiting`` and move the run on (Conflict if another
    decision was taken first)."""
    from .runs import after, live

    assert step.approval is not None
    order = runs.order(run)
    decision = {"approved": approve, "by": user, "comment": comment, "at": now.isoformat()}
    values: dict[str, Any] = {
        "outputs": {**run["outputs"], step.name: decision},
        "updated_at": now,
        "wake_at": None,
    }
    following = (step.next or after(order, step)) if approve else step.approval.rejected
    if following is not None:
        values.update(status="running", step=following)
    elif approve:
        values.update(status="succeeded", step=None, finished_at=now)
    else:
        values.update(
            status="failed", finished_at=now, error=f"step {step.name}: rejected by {user}"
        )
    with write_transaction(runs.app.engine) as conn:
        # Compare and set: of two decisions made at the same moment, one is taken.
        taken = conn.execute(
            STEP_RUNS.update()
            .where(STEP_RUNS.c.id == waiting["id"], STEP_RUNS.c.status == "waiting")
            .values(status="succeeded", outputs=decision, finished_at=now)
        ).rowcount
        if not taken:
            message = f"step {step.name} of workflow run {run['id']} was decided already"
            raise Conflict(message, field=None)
        # A run cancelled meanwhile stays cancelled.
        conn.execute(live(run["id"], values))


def expire(runs: Runs, run: dict[str, Any], waiting: dict[str, Any], now: datetime) -> None:
    """The approval's deadline passed: fail the run (``on_expiry: fail``) or decide."""
    from .runs import live

    step = runs.step_named(run, waiting["step"])
    assert step.approval is not None
    expiry = step.approval.on_expiry
    if expiry == "fail":
        message = f"step {step.name}: no decision before the deadline"
        with write_transaction(runs.app.engine) as conn:
            conn.execute(
                STEP_RUNS.update()
                .where(STEP_RUNS.c.id == waiting["id"])
                .values(status="failed", error=message, finished_at=now)
            )
            values = {"status": "timed_out", "error": message, "finished_at": now}
            conn.execute(live(run["id"], {**values, "updated_at": now}))
        return
    decided(runs, run, step, waiting, "(deadline)", expiry == "approve", "", now)


def pending(runs: Runs, run_id: int) -> dict[str, Any] | None:
    """The step run of the approval run ``run_id`` waits for, if any."""
    query = sa.select(STEP_RUNS).where(
        STEP_RUNS.c.run_id == run_id, STEP_RUNS.c.status == "waiting"
    )
    with read_transaction(runs.app.engine) as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)
