"""Record events: the outbox and the event bus.

Every record write appends a row to the outbox (``appbook_events``) in its own transaction
with :func:`append_event`, and after commit the writer calls :meth:`EventBus.publish` with the
returned :class:`RecordEvent` objects. Subscribers get them through :meth:`EventBus.subscribe`:

* :class:`LocalBus`, the embedded default, hands events to subscriptions in the same
  process at once and polls the outbox for events other processes (kernels) wrote;
* :class:`RedisBus` (when ``APPBOOK_REDIS_URL`` is set) sends them over Redis pub/sub.

The outbox is the truth and publishing is best effort: a :class:`Subscription` reads the
outbox to catch up (``since``) and to fill any hole in the live stream, so it delivers every
event once, in ``seq`` order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from .base import EventBus
from .local import LocalBus
from .model import RecordEvent
from .outbox import append_event, last_seq, read_outbox
from .subscription import Subscription

if TYPE_CHECKING:
    from .redis_bus import RedisBus

__all__ = [
    "EventBus",
    "LocalBus",
    "RecordEvent",
    "RedisBus",
    "Subscription",
    "append_event",
    "last_seq",
    "make_bus",
    "read_outbox",
]


def make_bus(engine: Engine, redis_url: str) -> EventBus:
    """A :class:`RedisBus` on ``redis_url``, or a :class:`LocalBus` when it is empty."""
    if not redis_url:
        return LocalBus(engine)
    from .redis_bus import RedisBus

    return RedisBus(engine, redis_url)


def __getattr__(name: str) -> Any:
    # redis-py costs ~60 ms to import; kernels on the embedded default never need it.
    if name == "RedisBus":
        from .redis_bus import RedisBus

        return RedisBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
