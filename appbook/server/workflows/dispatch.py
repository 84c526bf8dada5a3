"""The dispatcher: send every due run to the workers once, and again when its message is lost.

Runs are read from the database, so a run is sent only after the transaction that made it
due (a start, a wait that ended, a lease that ran out) has committed. Each send is recorded
in ``dispatched_at``. A run counts as sent for its current turn when ``dispatched_at`` is
later than its last transition (``updated_at``: every claim, step, wait and heartbeat
writes it); a run that moved since (it waited, or its worker died) is due anew and is sent
at once. A run still due whose send is older than ``redispatch_after`` lost its message
(Redis keeps nothing on disk by default, so a restart drops queued messages) and is sent
again: the dispatcher is also the reconciler.

Two dispatchers (two servers) do not flood the broker: which runs a tick sends is decided
by one ``UPDATE … SET dispatched_at … WHERE <still unsent> RETURNING id``, a compare-and-set
that a second dispatcher's identical statement finds already done. A workflow's
``max_concurrent`` is respected here too (runs beyond its room wait for a later tick), so
its runs are not sent only to be turned away by the claim.

Clocks of servers and workers are assumed in step (leases already need it); a skewed clock
delays a send until ``redispatch_after`` at worst, never loses a run.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..db import read_transaction, write_transaction
from ..errors import NotFound
from ..systables import RUNS, utcnow
from .runs import TERMINAL, Runs

if TYPE_CHECKING:
    from ..engine import Appbook

log = logging.getLogger("appbook.dispatch")

__all__ = ["Dispatcher"]


class Dispatcher:
    """Sends ``send(run_id)`` for each due run not yet sent (or whose send is stale).

    ``tick()`` does one pass (tests call it); ``start()`` runs passes every ``interval``
    seconds in a thread until ``stop()``; ``wake()`` asks for a pass now (a run was queued).
    """

    def __init__(
        self,
        app: Appbook,
        send: Callable[[int], None],
        *,
        interval: float = 1.0,
        redispatch_after: float = 60.0,
        batch: int = 500,
    ) -> None:
        self.app = app
        self.send = send
        self.interval = interval
        self.redispatch_after = redispatch_after
        self.batch = batch
        self.sent = 0  # sends so far (tests and the bench read it)
        self.failures = 0  # passes in a row whose send failed: the thread backs off
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass -------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> list[int]:
        """Send each due run that needs it; the ids sent. A send that fails (the broker is
        down) is undone, so the next pass tries again."""
        moment = now or utcnow()
        chosen = self._choose(moment)
        if not chosen:
            return []
        # Stamped after the read: a run it saw committed its last transition before now,
        # so the stamp is later than its ``updated_at`` and the run is not taken as moved.
        stamp = now or utcnow()
        taken = self._take(chosen, moment, stamp)
        for i, run_id in enumerate(taken):
            try:
                self.send(run_id)
            except Exception as exc:
                self.failures += 1
                log.warning("could not send workflow runs to the workers: %s", exc)
                self._untake(taken[i:], stamp)
                return taken[:i]
            self.sent += 1
        self.failures = 0
        return taken

    def _unsent(self, moment: datetime) -> sa.ColumnElement[bool]:
        stale = moment - timedelta(seconds=self.redispatch_after)
        return sa.or_(
            RUNS.c.dispatched_at.is_(None),
            RUNS.c.dispatched_at < RUNS.c.updated_at,
            RUNS.c.dispatched_at < stale,
        )

    def _choose(self, moment: datetime) -> list[int]:
        """Due, unsent runs, oldest first, within each workflow's ``max_concurrent``."""
        due, unsent = Runs.due(moment), self._unsent(moment)
        query = (
            sa.select(RUNS.c.id, RUNS.c.component, RUNS.c.workflow)
            .where(due, unsent)
            .order_by(RUNS.c.id)
            .limit(self.batch)
        )
        with read_transaction(self.app.engine) as conn:
            rows = list(conn.execute(query))
            room = self._room(conn, {(r.component, r.workflow) for r in rows}, moment)
        chosen: list[int] = []
        for row in rows:
            key = (row.component, row.workflow)
            if key in room:
                if room[key] <= 0:
                    continue
                room[key] -= 1
            chosen.append(int(row.id))
        return chosen

    def _room(
        self, conn: Any, workflows: set[tuple[str, str]], moment: datetime
    ) -> dict[tuple[str, str], int]:
        """For each capped workflow: its cap less the runs held or already on their way."""
        caps = {key: cap for key in workflows if (cap := self._cap(*key)) is not None}
        if not caps:
            return {}
        live = RUNS.c.lease_until >= moment  # held, as the claim counts them
        on_the_way = sa.and_(Runs.due(moment), sa.not_(self._unsent(moment)))
        query = sa.select(RUNS.c.component, RUNS.c.workflow, sa.func.count()).where(
            RUNS.c.component.in_({c for c, _ in caps}),
            RUNS.c.status.not_in(TERMINAL),
            sa.or_(live, on_the_way),
        )
        busy: Counter[tuple[str, str]] = Counter()
        for component, workflow, count in conn.execute(
            query.group_by(RUNS.c.component, RUNS.c.workflow)
        ):
            busy[(component, workflow)] = int(count)
        return {key: cap - busy[key] for key, cap in caps.items()}

    def _cap(self, component: str, workflow: str) -> int | None:
        try:
            workflows = self.app.registry.get(component).definition.workflows or {}
        except NotFound:
            return None  # unpublished since: the worker fails the run saying so
        found = workflows.get(workflow)
        return None if found is None else found.max_concurrent

    def _take(self, chosen: list[int], moment: datetime, stamp: datetime) -> list[int]:
        """Mark ``chosen`` sent at ``stamp``, in one statement that skips any run another
        dispatcher sent meanwhile (or that stopped being due); the ids marked."""
        update = (
            RUNS.update()
            .where(RUNS.c.id.in_(chosen), Runs.due(moment), self._unsent(moment))
            .values(dispatched_at=stamp)
            .returning(RUNS.c.id)
        )
        with write_transaction(self.app.engine) as conn:
            return sorted(int(i) for i in conn.execute(update).scalars())

    def _untake(self, ids: list[int], stamp: datetime) -> None:
        with write_transaction(self.app.engine) as conn:
            conn.execute(
                RUNS.update()
                .where(RUNS.c.id.in_(ids), RUNS.c.dispatched_at == stamp)
                .values(dispatched_at=None)
            )

    # -- the thread -----------------------------------------------------------------------
    def start(self) -> None:
        """Run passes in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="appbook-dispatch", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run a pass now rather than at the next interval."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current pass."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                # The database may be down for a moment: keep dispatching once it is back.
                log.exception("workflow dispatcher: a pass failed")
            # While the broker is down, try less often (up to every 30 s), not every pass.
            pause = min(30.0, self.interval * 2**self.failures) if self.failures else self.interval
            self._wake.wait(pause)
            self._wake.clear()
