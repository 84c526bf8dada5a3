"""Following record events on a daemon thread, for grids and forms that update live."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...server.events import RecordEvent, Subscription

if TYPE_CHECKING:
    from ...server.engine import Appbook

log = logging.getLogger(__name__)


class LiveRefresh:
    """Calls ``on_events`` on a daemon thread with the events ``subscription`` delivers.

    A burst of events makes one call (with all of them), and calls start at least
    ``interval`` seconds apart. :meth:`stop` closes the subscription and waits for the thread.
    """

    def __init__(
        self,
        subscription: Subscription,
        on_events: Callable[[list[RecordEvent]], object],
        interval: float = 0.25,
    ) -> None:
        self._subscription, self._on_events, self._interval = subscription, on_events, interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"appbook-live-{subscription.component}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop following (idempotent)."""
        self._stopped.set()
        self._subscription.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        last = float("-inf")
        sub = self._subscription
        while not self._stopped.is_set() and not sub.closed:
            try:
                first = sub.get()
                if first is None:
                    continue  # closed
                batch = [first]
                # Take in the rest of the burst until the next call is due.
                while (left := last + self._interval - time.monotonic()) > 0 and not sub.closed:
                    more = sub.get(timeout=left)
                    if more is not None:
                        batch.append(more)
                if not self._stopped.is_set():
                    self._on_events(batch)
                    last = time.monotonic()
            except Exception:
                log.exception("a live update failed; retrying in a second")
                self._stopped.wait(1.0)


def follow(
    watcher: LiveRefresh | None,
    on: bool,
    app: Appbook,
    component: str,
    refresh: Callable[[], object],
    failed: Callable[[Exception], object],
) -> LiveRefresh | None:
    """The watcher a view with a ``live`` switch should hold now: the old one stopped, and,
    when ``on``, a new one calling ``refresh`` after ``component``'s record events.

    ``failed`` gets the error if the event bus cannot be subscribed to (the view then shows
    that live updates are off), and None is returned.
    """
    if watcher is not None:
        watcher.stop()
    if not on:
        return None
    try:
        subscription = app.bus.subscribe(component=component)
    except Exception as exc:
        failed(exc)
        return None
    return LiveRefresh(subscription, lambda _events: refresh())
