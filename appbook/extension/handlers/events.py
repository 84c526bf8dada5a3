"""``events``: record events as a long poll (``events``) or a WebSocket (``events/ws``).

Both read the outbox after ``since`` first, then wait on a bus subscription. The blocking
:meth:`Subscription.get` runs in the pool in slices of :data:`SLICE` seconds, so a request
never holds a thread for long; closing the subscription (client gone, server stopping)
ends a wait at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ...server.engine import Appbook
from ...server.errors import ServiceUnavailable
from ...server.events import RecordEvent, Subscription, last_seq, read_outbox
from ..base import HTTP_CODES, AppbookHandler, BadRequest
from ..models import Event, EventPage
from ..openapi import Param, operation

T = TypeVar("T")
SLICE = 1.0
DEFAULT_TIMEOUT = 25.0
MAX_TIMEOUT = 60.0
MAX_LIMIT = 1000
COMPONENT = Param("component", {"type": "string"}, "Only events of this component")
SINCE = Param("since", {"type": "integer", "minimum": 0}, "Events after this seq (default: now)")


def take(subscription: Subscription, limit: int, timeout: float) -> list[RecordEvent]:
    """Up to ``limit`` events: wait ``timeout`` s for the first, then take what is there."""
    first = subscription.get(timeout)
    if first is None:
        return []
    events = [first]
    while len(events) < limit and (event := subscription.get(0)) is not None:
        events.append(event)
    return events


def subscribe(app: Appbook, component: str | None, since: int | None) -> Subscription:
    """A subscription on the server's bus (503 once the server is stopping)."""
    try:
        return app.bus.subscribe(component, since)
    except RuntimeError as exc:  # the bus is closed
        raise ServiceUnavailable(f"record events are not available: {exc}") from None


class EventsHandler(AppbookHandler):
    """Long poll: events after ``since``, waiting up to ``timeout`` seconds for one."""

    _subscription: Subscription | None = None

    @web.authenticated
    @authorized
    @operation(
        "Record events after since (long poll): answers at once when there are some, else "
        "waits up to timeout seconds; pass last_seq back as since",
        response=EventPage,
        params=(
            SINCE,
            COMPONENT,
            Param("timeout", {"type": "number", "minimum": 0, "maximum": 60, "default": 25}),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}),
        ),
        errors=(400, 403, 503),
        tags=("events",),
    )
    async def get(self) -> None:
        """``{"items": [Event, ...], "last_seq": N}``; empty after the timeout."""
        component = self.get_argument("component", None) or None
        since = self.int_arg("since")
        limit = self.int_arg("limit", 100) or 0
        timeout = self._timeout()
        if since is not None and since < 0:
            raise BadRequest(f"query parameter 'since' must be 0 or more, got {since}")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"query parameter 'limit' must be 1 to {MAX_LIMIT}, got {limit}")
        app = self.engine
        if since is None:
            since = await self.run(last_seq, app.engine)
        events = await self.run(read_outbox, app.engine, since, component, limit)
        if events:
            self.reply({"items": [e.to_dict() for e in events], "last_seq": events[-1].seq})
            return
        events, position = await self._wait(app, component, since, limit, timeout)
        self.reply({"items": [e.to_dict() for e in events], "last_seq": position})

    def on_connection_close(self) -> None:
        """The client left: end the wait."""
        if self._subscription is not None:
            self._subscription.close()
        super().on_connection_close()

    async def _wait(
        self, app: Appbook, component: str | None, since: int, limit: int, timeout: float
    ) -> tuple[list[RecordEvent], int]:
        subscription = self._subscription = await self.run(subscribe, app, component, since)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while not subscription.closed and (left := deadline - loop.time()) > 0:
                events = await self.run_waiting(take, subscription, limit, min(left, SLICE))
                if events:
                    return events, events[-1].seq
            # Nothing of ours up to the cursor: the client may skip past other components.
            return [], subscription.position
        finally:
            subscription.close()

    def _timeout(self) -> float:
        raw = self.get_argument("timeout", None)
        if raw is None or raw == "":
            return DEFAULT_TIMEOUT
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 <= value <= MAX_TIMEOUT:
            raise BadRequest(
                f"query parameter 'timeout' must be 0 to {MAX_TIMEOUT:.0f} seconds, got {raw!r}"
            )
        return value


class EventsSocket(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """Each record event as a JSON text message, as long as the socket stays open."""

    auth_resource = "appbook"
    _subscription: Subscription | None = None
    _pump: asyncio.Task[None] | None = None

    def set_default_headers(self) -> None:
        """No page headers (CSP and the like) on a WebSocket upgrade."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Refusals before the upgrade leave in the API's JSON error shape."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        code = HTTP_CODES.get(status_code, "error")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": code, "message": message}}))

    def get_compression_options(self) -> dict[str, Any] | None:
        """The server's WebSocket compression settings."""
        options: dict[str, Any] | None = self.settings.get("websocket_compression_options")
        return options

    @ws_authenticated
    @operation(
        "WebSocket: each record event (an Event object) as a JSON text message; "
        "since replays events after that seq first",
        response=Event,
        status=101,
        params=(COMPONENT, SINCE),
        errors=(400, 403),
        tags=("events",),
    )
    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Authorise (read on appbook), check the parameters, then upgrade."""
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", self.auth_resource)
        )
        if not allowed:
            raise web.HTTPError(403, f"User is not authorized to read on {self.auth_resource}.")
        self._component = self.get_argument("component", None) or None
        raw = self.get_argument("since", None) or None
        if raw is not None and not raw.isdigit():
            raise web.HTTPError(400, f"query parameter 'since' must be an integer, got {raw!r}")
        self._since = None if raw is None else int(raw)
        await super().get(*args, **kwargs)

    async def open(self, *args: Any, **kwargs: Any) -> None:
        """Subscribe and start sending."""
        super().open(*args, **kwargs)  # keep-alive pings
        app: Appbook = self.settings["appbook_engine"]
        try:
            self._subscription = await self._run(subscribe, app, self._component, self._since)
        except ServiceUnavailable as exc:
            self.close(1011, exc.message)
            return
        self._pump = asyncio.create_task(self._send_events(self._subscription))

    def on_message(self, message: str | bytes) -> None:
        """Clients have nothing to say; messages are ignored."""

    def on_close(self) -> None:
        """Stop the subscription; the sending task ends with it."""
        if self._subscription is not None:
            self._subscription.close()

    async def _send_events(self, subscription: Subscription) -> None:
        try:
            while not subscription.closed:
                for event in await self._run(take, subscription, 100, SLICE):
                    await self.write_message(json.dumps(event.to_dict()))
        except WebSocketClosedError:
            pass
        except RuntimeError:  # the pool is shut down: the server is stopping
            self.close(1001, "the server is stopping")
        except Exception:
            self.log.exception("event WebSocket stopped")
            self.close(1011, "internal error; see the server log")
        finally:
            subscription.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        # Waiting on a subscription: the wait pool, never the database pool.
        pool: Executor = (
            self.settings.get("appbook_wait_executor") or self.settings["appbook_executor"]
        )
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


routes = [
    (r"/appbook/api/events", EventsHandler),
    (r"/appbook/api/events/ws", EventsSocket),
]
