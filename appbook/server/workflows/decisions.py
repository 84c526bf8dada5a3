"""Approvals decided where no step may run: the server process and app kernels.

:meth:`Runs.decide` records the decision and then advances the run in the caller, which is
right for ``appbook approve`` (like ``appbook run``) but not for the REST API or an app:
the step after an approval may be a notebook or an e-mail, and step code never runs in the
server process. :func:`decide_queued` records the same decision (same checks, same
transaction) and leaves the run *queued* at its next step for an executor to take.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..db import write_transaction
from ..systables import RUNS, utcnow
from .runs import Runs

if TYPE_CHECKING:
    from ..engine import Appbook


class _QueueAfterDecision(Runs):
    """``decide`` calls ``advance`` once the decision is written; here that only hands the
    run to the executors: a run the decision moved on (running, held by nobody) is queued."""

    def advance(self, run_id: int, **options: Any) -> dict[str, Any]:
        now: datetime | None = options.get("now")
        with write_transaction(self.app.engine) as conn:
            conn.execute(
                RUNS.update()
                .where(
                    RUNS.c.id == run_id,
                    RUNS.c.status == "running",
                    RUNS.c.lease_owner.is_(None),
                )
                .values(status="queued", updated_at=now or utcnow(), dispatched_at=None)
            )
        return self.get(run_id)


def decide_queued(
    app: Appbook, run_id: int, user: str, *, approve: bool, comment: str = ""
) -> dict[str, Any]:
    """``user`` approves or rejects what run ``run_id`` waits for (Forbidden, Conflict as
    :meth:`Runs.decide`); the run then ends (no step follows) or waits, queued, for an
    executor. The run as it stands."""
    return _QueueAfterDecision(app).decide(run_id, user, approve=approve, comment=comment)
