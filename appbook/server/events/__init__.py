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

from sqlalchemy.engine import Engine

from .base import EventBus
from .local import LocalBus
from .model import RecordEvent
from .outbox import append_event, last_seq, read_outbox
from .redis_bus import RedisBus
from .subscription import Subscription

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
    return RedisBus(engine, redis_url) if redis_url else LocalBus(engine)
