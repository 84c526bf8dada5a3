"""A background thread that reads new outbox rows, for events other processes wrote."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy.engine import Engine

from .model import RecordEvent
from .outbox import last_seq, read_outbox

log = logging.getLogger(__name__)
_numbers = itertools.count(1)

THREAD_PREFIX = "appbook-outbox-poller"


class OutboxPoller:
    """Every ``interval`` seconds, hand the outbox rows after the last seen seq to ``feed``.

    Started by :meth:`start` (idempotent), ended by :meth:`stop`; the thread is a daemon so a
    forgotten bus never keeps a kernel alive. Database outages are logged once and ridden out.
    """

    def __init__(
        self,
        engine: Engine,
        interval: float,
        feed: Callable[[Sequence[RecordEvent]], None],
        *,
        page_size: int = 1000,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"poll interval must be positive, not {interval!r}")
        self.interval = interval
        self._engine = engine
        self._feed = feed
        self._page_size = page_size
        self._cursor = 0
        self._failing = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the polling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start polling from the current end of the outbox, unless started or stopped."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._cursor = last_seq(self._engine)
            name = f"{THREAD_PREFIX}-{next(_numbers)}"
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait up to ``timeout`` seconds for the thread to end."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def poll(self) -> None:
        """Read and hand on everything new now; errors are logged, not raised."""
        try:
            while not self._stop.is_set():
                events = read_outbox(self._engine, self._cursor, limit=self._page_size)
                if events:
                    self._cursor = events[-1].seq
                    self._feed(events)
                if len(events) < self._page_size:
                    break
        except Exception as exc:  # keep polling through database outages
            if not self._failing:
                log.warning("cannot read the event outbox, will retry: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("reading the event outbox again")
            self._failing = False

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()
