"""The embedded default: in-process fan-out plus an outbox poller for other processes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from .base import EventBus
from .fanout import Fanout
from .model import RecordEvent
from .poller import OutboxPoller
from .subscription import Subscription


class LocalBus(EventBus):
    """Events published in this process reach its subscriptions at once; events written by
    other processes (other kernels on the same database) within ``poll_interval`` seconds.

    The poller thread starts with the first subscription and stops on :meth:`close`.
    """

    def __init__(self, engine: Engine, poll_interval: float = 0.25) -> None:
        super().__init__(engine)
        self._fanout = Fanout()
        self._poller = OutboxPoller(engine, poll_interval, self._fanout.feed)
        self._closed = False

    def publish(self, events: Sequence[RecordEvent]) -> None:
        self._fanout.feed(events)

    def subscribe(self, component: str | None = None, since: int | None = None) -> Subscription:
        if self._closed:
            raise RuntimeError("the event bus is closed")
        self._poller.start()  # before the subscription reads its cursor: see Subscription
        return Subscription(self.engine, self._fanout, component, since)

    def close(self) -> None:
        self._closed = True
        self._poller.stop()
        self._fanout.close()
