"""The interface every event bus implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType

from sqlalchemy.engine import Engine

from .model import RecordEvent
from .subscription import Subscription


class EventBus(ABC):
    """Carries committed record events from writers to subscribers.

    Writers append events to the outbox in their transaction and :meth:`publish` them after
    commit; publishing is best effort, the outbox is the truth, and subscriptions read it
    (through ``engine``) to catch up.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @abstractmethod
    def publish(self, events: Sequence[RecordEvent]) -> None:
        """Announce committed events; never raises for an unreachable transport."""

    @abstractmethod
    def subscribe(self, component: str | None = None, since: int | None = None) -> Subscription:
        """A subscription to events of ``component`` (all when ``None``).

        With ``since``, events after that seq are first read from the outbox; without it,
        only events committed from now on are delivered.
        """

    @abstractmethod
    def close(self) -> None:
        """Close every subscription and stop background threads. Idempotent."""

    def __enter__(self) -> EventBus:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
