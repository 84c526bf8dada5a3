"""Webhook triggers: an outside system POSTs JSON, a workflow with ``trigger: {webhook: NAME}``
starts with it as its inputs.

Callers have no Jupyter token; each request proves it knows the hook's secret (the secret
store's ``webhook.{NAME}``) in one of two ways:

* **signed** (preferred): ``X-Appbook-Timestamp: <unix seconds>`` and
  ``X-Appbook-Signature: sha256=<hex HMAC-SHA256(secret, content)>`` where content is
  ``"{timestamp}." + raw body``, or ``"{timestamp}.{delivery}." + raw body`` when the
  request carries ``X-Appbook-Delivery`` (so a captured request cannot be sent again under
  another delivery id). A timestamp more than ``tolerance`` (300 s) away from the server's
  clock is refused, so a captured request cannot be replayed later, and an identical
  request within the window is the same delivery (without a delivery id, its signature is
  its id) and starts nothing new;
* **token**: ``X-Appbook-Token: <the secret>`` (for senders that cannot sign; the secret
  then travels with every request, and the body is not protected).

Comparisons are constant-time (:func:`hmac.compare_digest`). Order of checks: no
credentials at all → :class:`WebhookRefused` (401, before anything else, so unsigned
callers learn nothing about hook names); unknown hook → NotFound (404); body over
``max_body`` → PayloadTooLarge (413); bad signature, stale timestamp, no secret set →
WebhookRefused (401); over the hook's rate → :class:`RateLimited` (429 with Retry-After);
body not a JSON object → :class:`MalformedBody` (400). Only verified requests take from the
rate limit, so a flood of forged ones cannot lock the real sender out. Nothing is started
unless every check passed.

A run's inputs are the workflow's ``inputs`` updated with the body (an empty body is
``{}``); it acts as ``webhook:{NAME}``. ``X-Appbook-Delivery: <id>`` (letters, digits and
``._:-``, up to 100) names a delivery: sent again, it starts no second run and answers the
runs of the first (``duplicate: true``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..db import read_transaction
from ..definitions.workflows import WorkflowDef
from ..errors import AppbookError, NotFound, PayloadTooLarge
from ..systables import RUNS

if TYPE_CHECKING:
    from ..engine import Appbook

SIGNATURE = "X-Appbook-Signature"
TIMESTAMP = "X-Appbook-Timestamp"
TOKEN = "X-Appbook-Token"
DELIVERY = "X-Appbook-Delivery"
TOLERANCE = 300.0
MAX_BODY = 1024 * 1024
RATE, BURST = 10.0, 20  # requests a second per hook, and how many may come at once
DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII only: str.isdigit() takes "²" too

__all__ = [
    "MalformedBody",
    "RateLimited",
    "TokenBucket",
    "WebhookRefused",
    "Webhooks",
    "hook_secret",
    "sign",
]


class WebhookRefused(AppbookError):
    """The request did not prove it knows the hook's secret (HTTP 401)."""

    code = "unauthenticated"


class RateLimited(AppbookError):
    """The hook got more requests than its rate allows (HTTP 429); retry after a while."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MalformedBody(AppbookError):
    """The body is not a JSON object, or a header is malformed (HTTP 400)."""

    code = "bad_request"


def hook_secret(app: Appbook, hook: str) -> str:
    """The secret of ``hook``: ``webhook.{hook}`` in the secret store (NotFound if unset).
    The one place that says where hook secrets live."""
    return app.secrets.get(f"webhook.{hook}")


def sign(secret: str, timestamp: int | str, body: bytes, delivery: str | None = None) -> str:
    """The ``X-Appbook-Signature`` value of ``body`` sent at ``timestamp`` (with
    ``delivery`` when the request carries ``X-Appbook-Delivery``)."""
    prefix = f"{timestamp}." if delivery is None else f"{timestamp}.{delivery}."
    content = prefix.encode() + body
    return "sha256=" + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; a request takes one."""

    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> float:
        """0 if a token was taken, else the seconds until one will be there."""
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass(frozen=True)
class Target:
    """A workflow a hook starts."""

    component: str
    workflow: str
    definition: WorkflowDef


@dataclass
class Delivery:
    """What a request started (or, for a repeated delivery, had started)."""

    hook: str
    delivery: str | None
    duplicate: bool
    runs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer: hook, delivery, duplicate and each run's id, workflow, status."""
        keys = ("id", "component", "workflow", "record_id", "status")
        shown = [{k: run[k] for k in keys} for run in self.runs]
        return {**self.__dict__, "runs": shown}


class Webhooks:
    """Receives hook requests for one server: verification, rate limits, runs."""

    def __init__(
        self,
        app: Appbook,
        *,
        rate: float = RATE,
        burst: int = BURST,
        tolerance: float = TOLERANCE,
        max_body: int = MAX_BODY,
        secret: Callable[[Appbook, str], str] = hook_secret,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app, self.rate, self.burst = app, rate, burst
        self.tolerance, self.max_body = tolerance, max_body
        self.secret, self.clock = secret, clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def receive(self, hook: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """Verify a request to ``hook`` and start its workflows (see the module docstring)."""
        if not any(headers.get(h) for h in (SIGNATURE, TOKEN)):
            raise WebhookRefused(
                f"missing signature: send {SIGNATURE} (sha256=HMAC-SHA256 of "
                f"'{{timestamp}}.{{body}}' with the hook's secret) and {TIMESTAMP}, "
                f"or {TOKEN}"
            )
        targets = self.targets(hook)
        if len(body) > self.max_body:
            raise PayloadTooLarge(
                f"webhook {hook!r}: body of {len(body)} bytes is over the limit of "
                f"{self.max_body} bytes"
            )
        delivery = self.verify(hook, body, headers)
        self.limit(hook)
        inputs = _inputs(hook, body)
        return self.start(hook, targets, inputs, delivery)

    def targets(self, hook: str) -> list[Target]:
        """The enabled workflows ``hook`` starts (NotFound if none)."""
        found = [
            Target(name, workflow, definition)
            for name, component in sorted(self.app.registry.all().items())
            for workflow, definition in (component.definition.workflows or {}).items()
            if definition.enabled
            and definition.trigger is not None
            and definition.trigger.webhook == hook
        ]
        if not found:
            raise NotFound(f"no webhook {hook!r} (no enabled workflow has trigger webhook: {hook})")
        return found

    def verify(self, hook: str, body: bytes, headers: Mapping[str, str]) -> str | None:
        """WebhookRefused unless the request proves it knows the secret; the delivery id
        (the header, else a signed request's signature)."""
        delivery = headers.get(DELIVERY) or None
        if delivery is not None and not DELIVERY_ID.fullmatch(delivery):
            raise MalformedBody(
                f"{DELIVERY} must be 1 to 100 letters, digits or ._:- (got {delivery[:120]!r})"
            )
        try:
            secret = self.secret(self.app, hook)
        except NotFound:
            raise WebhookRefused(
                f"webhook {hook!r} cannot be verified: its secret webhook.{hook} is not set"
            ) from None
        signature = headers.get(SIGNATURE)
        if not signature:
            token = headers.get(TOKEN, "")
            if not hmac.compare_digest(token.encode(), secret.encode()):
                raise WebhookRefused(f"webhook {hook!r}: wrong {TOKEN}")
            return delivery
        stamp = headers.get(TIMESTAMP, "")
        if not UNIX_SECONDS.fullmatch(stamp):
            raise WebhookRefused(f"webhook {hook!r}: {TIMESTAMP} must be unix seconds")
        skew = abs(self.clock() - int(stamp))
        if skew > self.tolerance:
            raise WebhookRefused(
                f"webhook {hook!r}: {TIMESTAMP} is {skew:.0f} s away from the server's "
                f"clock (at most {self.tolerance:.0f} s): a replay, or a clock to set"
            )
        expected = sign(secret, stamp, body, delivery)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            signed = "'{timestamp}.{delivery}.{body}'" if delivery else "'{timestamp}.{body}'"
            raise WebhookRefused(
                f"webhook {hook!r}: bad {SIGNATURE} (expected sha256=<hex HMAC-SHA256 of "
                f"{signed}> with the hook's secret)"
            )
        return delivery or signature.removeprefix("sha256=")

    def limit(self, hook: str) -> None:
        """RateLimited if ``hook`` is over its rate now."""
        with self._lock:
            bucket = self._buckets.setdefault(hook, TokenBucket(self.rate, self.burst))
            wait = bucket.take(time.monotonic())
        if wait > 0:
            raise RateLimited(
                f"webhook {hook!r} takes at most {self.rate:g} requests a second "
                f"(bursts of {self.burst}); retry in {wait:.1f} s",
                retry_after=wait,
            )

    def start(
        self, hook: str, targets: list[Target], inputs: dict[str, Any], delivery: str | None
    ) -> Delivery:
        """Start each target's run (once per delivery id, when there is one)."""
        acting = self.app.as_user(f"webhook:{hook}")
        keys = [None if delivery is None else _key(hook, delivery, t) for t in targets]
        duplicate = all(k is not None for k in keys) and _known(self.app, keys)
        runs = [
            acting.runs.start(
                target.component,
                target.workflow,
                inputs={**target.definition.inputs, **inputs},
                trigger="webhook",
                trigger_key=key,
            )
            for target, key in zip(targets, keys, strict=True)
        ]
        return Delivery(hook=hook, delivery=delivery, duplicate=duplicate, runs=runs)


def _inputs(hook: str, body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"webhook {hook!r}: body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedBody(
            f"webhook {hook!r}: body must be a JSON object (it becomes the run's inputs), "
            f"not {type(data).__name__}"
        )
    return data


def _key(hook: str, delivery: str, target: Target) -> str:
    key = f"webhook:{hook}:{delivery}:{target.component}:{target.workflow}"
    if len(key) <= 200:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"webhook:{hook[:60]}:{digest}"


def _known(app: Appbook, keys: list[str | None]) -> bool:
    query = sa.select(sa.func.count()).where(RUNS.c.trigger_key.in_([k for k in keys if k]))
    with read_transaction(app.engine) as conn:
        return int(conn.execute(query).scalar_one()) == len(keys)
