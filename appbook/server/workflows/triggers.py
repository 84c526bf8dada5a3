"""The trigger service: cron and record-event triggers, fired by one replica at a time.

Every ``appbook serve`` replica runs a :class:`TriggerService`. A pass (:meth:`tick`) takes
or renews two named leases (:mod:`.leases`), ``appbook.triggers.cron`` and
``appbook.triggers.events``, and does the work of each one it holds: a cron sweep
(:mod:`.cron`) and an outbox dispatch (:mod:`.record_triggers`). Replicas that hold no
lease do nothing but try again; when the holder stops it releases its leases and another
replica takes over on its next pass (if it dies, when the lease runs out). Trigger keys make
a firing idempotent even if two replicas ever overlapped.

:meth:`start` runs passes on a daemon thread: every ``interval`` seconds, at once when a
record event arrives on the bus, and at the next cron due time when that is sooner, so
firing delay is not bounded below by the interval. :meth:`stop` ends it and lets the leases
go. Tests drive :meth:`tick` directly with a given ``now``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..systables import utcnow
from . import cron, record_triggers
from .leases import acquire, release

if TYPE_CHECKING:
    from ..engine import Appbook
    from ..events import Subscription

log = logging.getLogger(__name__)
CRON_LEASE = "appbook.triggers.cron"
EVENTS_LEASE = "appbook.triggers.events"
DRAIN = 10_000  # events taken off the bus per wake-up, at most
LEASE_SECONDS = 15.0  # shorter than cron's grace: a take-over after a crash misses nothing

__all__ = ["CRON_LEASE", "EVENTS_LEASE", "TriggerService"]


class TriggerService:
    """Fires cron and record-event triggers of ``app``'s workflows as lease ``owner``.

    ``on_started`` is called with the runs a pass started, when it started any (the server
    passes its executor's ``wake``, so they are taken at once rather than at its next poll).
    """

    def __init__(
        self,
        app: Appbook,
        owner: str,
        *,
        interval: float = 0.5,
        lease: float = LEASE_SECONDS,
        grace: float = cron.GRACE,
        on_started: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.app, self.owner = app, owner
        self.on_started = on_started
        self.interval, self.lease, self.grace = interval, lease, grace
        self.next_due: datetime | None = None
        self._held: dict[str, datetime] = {}  # lease -> until, as last written
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscription: Subscription | None = None

    def tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """One pass of cron and record events under the leases; the runs it started."""
        moment = now or utcnow()
        started: list[dict[str, Any]] = []
        if self._hold(CRON_LEASE, moment):
            sweep = cron.sweep(self.app, moment, grace=self.grace)
            started.extend(sweep.started)
            self.next_due = sweep.next_due
        else:
            self.next_due = None
        while self._hold(EVENTS_LEASE, moment):
            page = record_triggers.dispatch(self.app)
            started.extend(page.started)
            if not page.more:
                break
            moment = now or utcnow()
        if started and self.on_started is not None:
            self.on_started(started)
        return started

    def holds(self, name: str) -> bool:
        """Whether this service holds lease ``name`` (as of its last pass)."""
        return name in self._held

    def _hold(self, name: str, moment: datetime) -> bool:
        """Take or renew a lease; renewals are written only once half of it has run, so
        a replica's passes cost no write most of the time."""
        until = self._held.get(name)
        if until is not None and until - moment > timedelta(seconds=self.lease / 2):
            return True
        if acquire(self.app.engine, name, self.owner, self.lease, now=moment):
            self._held[name] = moment + timedelta(seconds=self.lease)
            return True
        self._held.pop(name, None)
        return False

    # -- the thread ----------------------------------------------------------------------
    def start(self) -> None:
        """Run passes on a daemon thread until :meth:`stop` (idempotent)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        try:
            self._subscription = self.app.bus.subscribe()
        except RuntimeError:  # the bus is closed: passes still run on the interval
            self._subscription = None
        self._thread = threading.Thread(target=self._loop, name="appbook-triggers", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, wait for its pass to end, and release the leases it holds."""
        self._stopping.set()
        if self._subscription is not None:
            self._subscription.close()  # wakes a wait at once
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for name in list(self._held):
            try:
                release(self.app.engine, name, self.owner)
            except Exception:  # the database is gone: the lease runs out by itself
                log.warning("could not release trigger lease %s", name, exc_info=True)
        self._held.clear()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("trigger pass failed; trying again")
            self._wait(self._pause())

    def _pause(self) -> float:
        pause = self.interval
        if self.next_due is not None:
            pause = min(pause, (self.next_due - utcnow()).total_seconds())
        return max(pause, 0.0)

    def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early for a record event or :meth:`stop`."""
        subscription = self._subscription
        if subscription is None or subscription.closed:
            self._stopping.wait(seconds)
            return
        try:
            if subscription.get(timeout=seconds) is not None:
                for _ in range(DRAIN):  # one pass deals with all of them
                    if subscription.get(timeout=0) is None:
                        break
        except Exception:
            log.warning("event subscription failed; polling instead", exc_info=True)
            subscription.close()
