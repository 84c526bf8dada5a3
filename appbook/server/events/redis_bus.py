"""Events across processes and machines through Redis pub/sub.

Each :meth:`RedisBus.publish` sends one JSON message ``{"events": [...]}`` to the channel.
One listener thread per bus receives them for all of its subscriptions. Redis is only the
fast path: a failed publish is logged and the events wait in the outbox, a listener that
lost its connection reconnects and has every subscription re-read the outbox, and a slow
outbox poller (``poll_interval``) picks up events whose publish never happened.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.exceptions import RedisError
from redis.retry import Retry
from sqlalchemy.engine import Engine

from ..errors import ServiceUnavailable
from .base import EventBus
from .fanout import Fanout
from .model import RecordEvent
from .poller import OutboxPoller
from .subscription import Subscription

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "appbook:events"
PUBLISH_PAUSE = 5.0  # seconds without publish attempts after a failure
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class RedisBus(EventBus):
    """An event bus over the Redis pub/sub ``channel`` at ``redis_url``.

    Use one channel per database: the seqs of two databases must not mix.
    ``poll_interval`` (seconds, ``None`` to turn off) is the safety-net outbox poll.
    """

    def __init__(
        self,
        engine: Engine,
        redis_url: str,
        channel: str = DEFAULT_CHANNEL,
        *,
        poll_interval: float | None = 2.0,
        timeout: float = 2.0,
    ) -> None:
        super().__init__(engine)
        self.channel = channel
        self.where = redact_url(redis_url)
        options: dict[str, Any] = {
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "health_check_interval": 30,
        }
        # One quick retry covers a stale pooled connection when publishing. The listener
        # must not reconnect silently (it would hide lost messages), so it never retries.
        self._client = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 1), **options)
        self._listen_client = redis.Redis.from_url(
            redis_url, retry=Retry(NoBackoff(), 0), **options
        )
        self._fanout = Fanout()
        self._poller = (
            OutboxPoller(engine, poll_interval, self._fanout.feed) if poll_interval else None
        )
        self._listener: _Listener | None = None
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._closed = False

    def publish(self, events: Sequence[RecordEvent]) -> None:
        if not events:
            return
        self._fanout.feed(events)
        if time.monotonic() < self._paused_until:
            return
        payload = json.dumps({"events": [e.to_dict() for e in events]})
        try:
            self._client.publish(self.channel, payload)
        except RedisError as exc:
            self._paused_until = time.monotonic() + PUBLISH_PAUSE
            log.warning(
                "cannot publish events %d..%d to Redis %s (%s); they stay in the outbox "
                "and subscribers catch up from it",
                events[0].seq,
                events[-1].seq,
                self.where,
                exc,
            )

    def subscribe(self, component: str | None = None, since: int | None = None) -> Subscription:
        with self._lock:
            if self._closed:
                raise RuntimeError("the event bus is closed")
            if self._listener is None:
                self._listener = _Listener(
                    self._listen_client, self.channel, self.where, self._fanout
                )
            else:
                self._check()
        if self._poller is not None:
            self._poller.start()
        return Subscription(self.engine, self._fanout, component, since)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        if self._poller is not None:
            self._poller.stop()
        self._fanout.close()
        self._client.close()
        self._listen_client.close()

    def _check(self) -> None:
        try:
            self._client.ping()
        except RedisError as exc:
            raise _unreachable(self.where, exc) from exc


class _Listener:
    """The thread that receives the channel's messages and feeds the subscriptions."""

    def __init__(self, client: redis.Redis[bytes], channel: str, where: str, fanout: Fanout):
        self._client = client
        self._channel = channel
        self._where = where
        self._fanout = fanout
        self._stop = threading.Event()
        self._pubsub = self._connect()
        self._thread = threading.Thread(target=self._run, name="appbook-redis-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _connect(self) -> PubSub:
        """Subscribe and wait for Redis to confirm, so no later publish is missed."""
        pubsub = self._client.pubsub()
        try:
            pubsub.subscribe(self._channel)
            self._await_confirmation(pubsub)
        except (RedisError, TimeoutError) as exc:
            pubsub.close()
            raise _unreachable(self._where, exc) from exc
        return pubsub

    @staticmethod
    def _await_confirmation(pubsub: PubSub, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=deadline - time.monotonic())
            if message is not None and message["type"] == "subscribe":
                return
        raise TimeoutError(f"no subscribe confirmation within {timeout:g} s")

    def _run(self) -> None:
        pubsub: PubSub | None = self._pubsub
        while pubsub is not None and not self._stop.is_set():
            try:
                message = pubsub.get_message(timeout=0.2)
            except RedisError as exc:
                log.warning("lost Redis %s (%s); reconnecting", self._where, exc)
                pubsub.close()
                pubsub = self._reconnect()
                continue
            if message is not None and message["type"] == "message":
                self._handle(message["data"])
        if pubsub is not None:
            pubsub.close()

    def _reconnect(self) -> PubSub | None:
        attempt = 0
        while not self._stop.wait(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]):
            attempt += 1
            try:
                pubsub = self._connect()
            except ServiceUnavailable:
                continue
            log.info("reconnected to Redis %s; catching up from the outbox", self._where)
            self._fanout.catch_up()
            return pubsub
        return None

    def _handle(self, data: Any) -> None:
        try:
            events = [RecordEvent.from_dict(item) for item in json.loads(data)["events"]]
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed message on Redis channel %s: %s", self._channel, exc)
            return
        self._fanout.feed(events)


def _unreachable(where: str, exc: BaseException) -> ServiceUnavailable:
    return ServiceUnavailable(f"Redis {where} is not reachable: {exc}")
