"""Hand events to every open subscription of one bus, from any thread."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .model import RecordEvent

if TYPE_CHECKING:
    from .subscription import Subscription


class Fanout:
    """The open subscriptions of one bus; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []

    def add(self, subscription: Subscription) -> None:
        """Start handing events to ``subscription``."""
        with self._lock:
            self._subscriptions.append(subscription)

    def remove(self, subscription: Subscription) -> None:
        """Stop handing events to ``subscription`` (no error if it was not added)."""
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def feed(self, events: Sequence[RecordEvent]) -> None:
        """Queue ``events`` on every subscription; each drops what it already has."""
        if events:
            batch = list(events)
            for subscription in self._snapshot():
                subscription.feed(batch)

    def catch_up(self) -> None:
        """Ask every subscription to re-read the outbox (live events may have been lost)."""
        for subscription in self._snapshot():
            subscription.catch_up()

    def close(self) -> None:
        """Close every subscription."""
        for subscription in self._snapshot():
            subscription.close()

    def _snapshot(self) -> list[Subscription]:
        with self._lock:
            return list(self._subscriptions)
