"""One subscriber's stream of events: catch-up from the outbox, then live, by ``seq``.

A subscription keeps a *cursor*: every event with ``seq`` ≤ cursor has been dealt with
(delivered, or skipped by the component filter). Live events arrive from the bus in batches,
possibly twice (in-process and from a poller or Redis) or with holes (a lost Redis message,
a dropped batch); a live event at or below the cursor is a duplicate, and one more than one
past it means the events in between are read from the outbox first. This is exact because
sequence order is commit order (see :mod:`.outbox`): when an event is published, every
smaller seq has committed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from .model import RecordEvent
from .outbox import last_seq, read_page

if TYPE_CHECKING:
    from .fanout import Fanout


class Subscription:
    """Events of one subscriber in ``seq`` order, without duplicates or gaps.

    Obtained from :meth:`EventBus.subscribe`; read it with :meth:`get` or by iterating
    (iteration ends when the subscription is closed). One thread reads a subscription;
    any thread may close it.
    """

    def __init__(
        self,
        engine: Engine,
        fanout: Fanout,
        component: str | None = None,
        since: int | None = None,
        *,
        page_size: int = 1000,
        max_pending: int = 10_000,
    ) -> None:
        self.component = component
        self._engine = engine
        self._fanout = fanout
        self._page_size = page_size
        self._max_pending = max_pending
        self._inbox: queue.SimpleQueue[list[RecordEvent] | None] = queue.SimpleQueue()
        self._ready: deque[RecordEvent] = deque()
        self._closed = threading.Event()
        self._resync = threading.Event()
        self._catching_up = since is not None
        # Listen before reading the cursor, so nothing committed in between is missed.
        fanout.add(self)
        try:
            self._cursor = since if since is not None else last_seq(engine)
        except BaseException:
            fanout.remove(self)
            raise

    @property
    def position(self) -> int:
        """The seq up to which events have been read; pass it as ``since`` to resume."""
        return self._cursor

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed.is_set()

    def get(self, timeout: float | None = None) -> RecordEvent | None:
        """The next event; ``None`` after ``timeout`` seconds or once closed.

        ``timeout=None`` waits until an event comes or the subscription is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            if self._ready:
                return self._ready.popleft()
            try:
                if not self._advance(deadline):
                    return None
            except BaseException:
                self._resync.set()  # a failed read may have lost live events: re-read later
                raise
        return None

    def feed(self, events: Sequence[RecordEvent]) -> None:
        """Queue live events (called by the bus, from any thread)."""
        if self._closed.is_set():
            return
        if self._inbox.qsize() >= self._max_pending:
            # A reader that fell far behind: drop live events, re-read the outbox later.
            if not self._resync.is_set():
                self.catch_up()
            return
        self._inbox.put(list(events))

    def catch_up(self) -> None:
        """Re-read the outbox after the cursor before the next live event (any thread)."""
        self._resync.set()
        self._inbox.put(None)

    def close(self) -> None:
        """Stop receiving; a blocked :meth:`get` returns ``None``. Idempotent."""
        if not self._closed.is_set():
            self._closed.set()
            self._fanout.remove(self)
            self._inbox.put(None)

    def _advance(self, deadline: float | None) -> bool:
        """Move some events to the ready queue; ``False`` once the deadline has passed."""
        if self._resync.is_set():
            self._resync.clear()
            self._catching_up = True
        if self._catching_up:
            self._read_next_page()
            return True
        remaining = None if deadline is None else deadline - time.monotonic()
        try:
            if remaining is None or remaining > 0:
                batch = self._inbox.get(timeout=remaining)
            else:
                batch = self._inbox.get_nowait()
        except queue.Empty:
            return False
        if batch is not None:
            self._absorb(batch)
        return True

    def _read_next_page(self) -> None:
        events, high = read_page(self._engine, self._cursor, self.component, self._page_size)
        self._ready.extend(events)
        if len(events) == self._page_size:
            self._cursor = events[-1].seq
        else:
            # The snapshot held nothing more of ours up to its highest seq.
            self._cursor = max(self._cursor, high)
            self._catching_up = False

    def _absorb(self, batch: list[RecordEvent]) -> None:
        for event in sorted(batch, key=lambda e: e.seq):
            if event.seq <= self._cursor:
                continue
            if event.seq > self._cursor + 1:
                self._fill_gap(event.seq - 1)
            self._cursor = event.seq
            if self.component is None or event.component == self.component:
                self._ready.append(event)

    def _fill_gap(self, until: int) -> None:
        while True:
            events, _ = read_page(
                self._engine, self._cursor, self.component, self._page_size, until=until
            )
            self._ready.extend(events)
            if len(events) < self._page_size:
                break
            self._cursor = events[-1].seq
        self._cursor = until

    def __iter__(self) -> Iterator[RecordEvent]:
        while (event := self.get()) is not None:
            yield event

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
