"""The base of every Appbook REST handler.

Handlers stay thin: authenticate, authorise on the ``appbook`` resource, read the body
through one validated model, run engine work off the event loop, and answer JSON. Errors,
wherever raised, leave as ``{"error": {"code", "message", "fields"?}}`` with the status from
:mod:`appbook.extension.status`; a viewer never sees a traceback.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import pydantic
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..server.engine import Appbook
from ..server.errors import AppbookError, PayloadTooLarge, ValidationError
from .status import status_of

T = TypeVar("T")
ANONYMOUS = re.compile(r"[0-9a-f]{32}")
M = TypeVar("M", bound=pydantic.BaseModel)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    503: "unavailable",
}


def actor_name(user: Any, app: Appbook) -> str:
    """Who a request acts as: the signed-in user's name, or the server owner (the engine's
    actor) for token holders, whom jupyter_server names with a fresh random id per request
    (the token is the owner's credential)."""
    name = getattr(user, "username", None)
    if not name or ANONYMOUS.fullmatch(str(name)):
        return app.actor
    return str(name)


class BadRequest(AppbookError):
    """The request itself is malformed (not JSON, wrong parameter type)."""

    code = "bad_request"


class AppbookHandler(APIHandler):
    """JSON API handler with Appbook's engine, executor, body parsing and error shape."""

    auth_resource = "appbook"

    @property
    def engine(self) -> Appbook:
        """The engine, acting as the authenticated user."""
        app: Appbook = self.settings["appbook_engine"]
        name = actor_name(self.current_user, app)
        return app if name == app.actor else app.as_user(name)

    @property
    def executor(self) -> Executor:
        """The bounded pool engine calls run in, so the event loop never waits on the database."""
        pool: Executor = self.settings["appbook_executor"]
        return pool

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking engine call in the pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    async def run_waiting(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a call that mostly waits (event subscriptions, upload bodies) in the wait pool,
        so clients waiting for events never starve database work."""
        pool: Executor = self.settings.get("appbook_wait_executor") or self.executor
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, lambda: fn(*args, **kwargs))

    async def prepare(self) -> None:  # type: ignore[override]
        """Tag the request with an id (returned in ``X-Request-Id``) and check its size."""
        self.request_id = self.request.headers.get("X-Request-Id") or uuid.uuid4().hex
        self.set_header("X-Request-Id", self.request_id)
        await super().prepare()
        limit: int = self.settings.get("appbook_max_body_size", 0)
        length = self.request.headers.get("Content-Length")
        if limit and length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(
                f"request body of {length} bytes is over the limit of {limit} bytes"
            )

    def on_finish(self) -> None:
        """Record the request in the metrics (route template, method, status, latency)."""
        observe = self.settings.get("appbook_observe")
        if observe is not None:
            observe(self)

    def json_body(self, model: type[M]) -> M:
        """The request body validated by ``model``: 400 if not JSON, 422 naming bad fields."""
        data = self.raw_json()
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise ValidationError(pydantic_errors(exc), where="request body") from None

    def raw_json(self) -> Any:
        """The request body parsed as JSON (400 when it is not)."""
        body = self.request.body
        if not body:
            raise BadRequest("expected a JSON body, got an empty request body")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None

    def json_arg(self, name: str) -> Any:
        """A query argument holding JSON (``where=...``), or None."""
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"query parameter {name!r} is not valid JSON: {exc.msg}") from None

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """An integer query argument (400 naming it when it is not one)."""
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise BadRequest(f"query parameter {name!r} must be an integer, got {raw!r}") from None

    def bool_arg(self, name: str) -> bool:
        """A boolean query argument (``true``/``false``, ``1``/``0``)."""
        raw = (self.get_argument(name, "") or "").lower()
        if raw in ("", "0", "false", "no"):
            return False
        if raw in ("1", "true", "yes"):
            return True
        raise BadRequest(f"query parameter {name!r} must be true or false, got {raw!r}")

    def reply(self, data: Any, status: int = 200) -> None:
        """Finish with a JSON body."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=_json_default))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error leaves in the brief's shape: ``{"error": {...}}``."""
        request_id = getattr(self, "request_id", None)
        if request_id:  # send_error() cleared the headers set in prepare()
            self.set_header("X-Request-Id", request_id)
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, AppbookError):
            status_code = 400 if isinstance(exc, BadRequest) else status_of(exc)
            self.set_status(status_code)
            body = exc.to_dict()
        elif isinstance(exc, web.HTTPError):
            code = HTTP_CODES.get(status_code, "error")
            body = {"code": code, "message": exc.log_message or self._reason}
        else:
            rid = getattr(self, "request_id", "?")
            body = {
                "code": "internal",
                "message": f"internal error (request {rid}); see the server log",
            }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": body}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Engine errors are answers, not server faults: log them in one line."""
        if isinstance(value, AppbookError):
            request_id = getattr(self, "request_id", "-")
            method, path = self.request.method, self.request.path
            self.log.info(
                "%s %s -> %s: %s request_id=%s", method, path, value.code, value.message, request_id
            )
        else:
            super().log_exception(typ, value, tb)


def pydantic_errors(exc: pydantic.ValidationError) -> dict[str, list[str]]:
    """pydantic errors as field -> messages (unknown fields named as such)."""
    errors: dict[str, list[str]] = {}
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "body"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        errors.setdefault(path, []).append(message)
    return errors


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
