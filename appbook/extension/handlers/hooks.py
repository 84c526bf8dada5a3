"""``hooks/{name}``: outside systems start workflows (``trigger: {webhook: NAME}``).

The one route without a Jupyter token: callers are other systems, so the request is
verified by its HMAC signature (or secret token) instead, in the engine
(:mod:`appbook.server.workflows.webhooks`). No cookies are involved, so there is no XSRF
check either: a browser cannot forge a signature. The :class:`Webhooks` receiver (its rate
limits) lives in the server's settings as ``appbook_webhooks``; one with the defaults is
made on first use when the server did not configure one.
"""

from __future__ import annotations

import math
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from pydantic import BaseModel

from ...server.workflows.webhooks import (
    DELIVERY,
    SIGNATURE,
    TIMESTAMP,
    TOKEN,
    RateLimited,
    Webhooks,
)
from ..base import AppbookHandler
from ..openapi import Param, operation

HOOK = r"(?P<name>[A-Za-z0-9_.-]{1,100})"
TEXT = {"type": "string"}
HEADERS = (
    Param(TIMESTAMP, TEXT, "Unix seconds, part of the signed content", "header"),
    Param(SIGNATURE, TEXT, "sha256=<hex HMAC-SHA256>", "header"),
    Param(TOKEN, TEXT, "The hook's secret, for senders that cannot sign", "header"),
    Param(DELIVERY, TEXT, "A delivery id: sent again, it starts no second run", "header"),
)


class HookRun(BaseModel):
    """A run a hook started."""

    id: int
    component: str
    workflow: str
    record_id: int | None
    status: str


class HookDelivery(BaseModel):
    """What a hook request started (for a repeated delivery: had started)."""

    hook: str
    delivery: str | None
    duplicate: bool
    runs: list[HookRun]


class HookHandler(AppbookHandler):
    """Start the workflows of a webhook with the request's JSON body as inputs."""

    def check_xsrf_cookie(self) -> None:
        """No XSRF check: the caller sends no cookies, the signature is its proof."""

    @property
    def webhooks(self) -> Webhooks:
        """The server's webhook receiver (made with the defaults on first use)."""
        found = self.settings.get("appbook_webhooks")
        if found is None:
            found = self.settings.setdefault(
                "appbook_webhooks", Webhooks(self.settings["appbook_engine"])
            )
        receiver: Webhooks = found
        return receiver

    @allow_unauthenticated  # verified by the signature in the engine, not by a token
    @operation(
        "Start the workflows of webhook {name}: the JSON body (an object) becomes the run's "
        "inputs. No Jupyter token: sign the request with the hook's secret (webhook.{name} "
        "in the secret store): X-Appbook-Timestamp (unix seconds) and X-Appbook-Signature "
        "(sha256=<hex HMAC-SHA256 of '{timestamp}.{body}'>), or send X-Appbook-Token. "
        "202 with the runs started; 200 with the same runs for a repeated delivery",
        response=HookDelivery,
        status=202,
        also=(200,),
        body={"type": "object", "additionalProperties": True},
        params=HEADERS,
        errors=(400, 401, 404, 413, 429, 503),
        tags=("webhooks",),
    )
    async def post(self, name: str) -> None:
        """Verify, rate-limit and start; the runs."""
        receive = self.webhooks.receive
        delivery = await self.run(receive, name, self.request.body, self.request.headers)
        self.wake()
        self.reply(delivery.to_dict(), 200 if delivery.duplicate else 202)

    def wake(self) -> None:
        """Tell the server's workflow executor runs are due now (saves its poll's wait)."""
        manager = getattr(self.serverapp, "extension_manager", None)
        for ext in manager.extension_apps.get("appbook", ()) if manager is not None else ():
            executor = getattr(ext, "workflow_executor", None)
            if executor is not None:
                executor.wake()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """As every handler's, plus Retry-After when the hook is over its rate."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, RateLimited):
            self.set_header("Retry-After", str(max(1, math.ceil(exc.retry_after))))
        super().write_error(status_code, **kwargs)


routes = [(rf"/appbook/api/hooks/{HOOK}", HookHandler)]
