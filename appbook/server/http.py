"""The one HTTP client for calls to outside services, guarded against request forgery.

Webhook notifications use it now, dataflow ``http_get``/``http_call`` next. A URL in a
definition is the maker's, not the operator's, so every call goes through a
:class:`Guard`: the host must be allowed (``allowed_hosts``, when set), and *after DNS
resolution* every address must be public. Loopback, link-local (169.254.0.0/16, the cloud
metadata service; fe80::/10), private (10/8, 172.16/12, 192.168/16, fc00::/7),
unspecified, multicast and other non-global addresses are refused unless they fall in
``allow_private``.

The check sits in the socket connect of httpcore's network backend: the backend resolves
the name once, checks the addresses, and connects to the checked address itself, so a DNS
answer that changes between check and connect (rebinding) cannot reach a refused address.
TLS and the ``Host`` header still use the name (httpcore sets SNI from the URL), and every
connection of the pool, redirects included, passes the same check. Proxies from the
environment are ignored: a proxy would resolve names where the guard cannot see.

Connect errors and 5xx answers are retried with exponential backoff; errors are
:class:`OutboundError` (or :class:`OutboundRefused`) naming the URL without credentials or
query values, and saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

from .errors import OutboundError, OutboundRefused
from .guard import Guard, GuardedBackend, GuardedTransport, why_refused
from .outbound import OutboundConfig

__all__ = [
    "Guard",
    "GuardedBackend",
    "GuardedTransport",
    "OutboundClient",
    "safe_url",
    "why_refused",
]

log = logging.getLogger(__name__)


class _HideUrlSecrets(logging.Filter):
    """Shows httpx's own request log line with :func:`safe_url` instead of the full URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(safe_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _hide_url_secrets_in_httpx_log() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HideUrlSecrets) for f in logger.filters):
        logger.addFilter(_HideUrlSecrets())


class OutboundClient:
    """Calls to outside services: guarded, with timeouts and retries (a context manager)."""

    def __init__(self, config: OutboundConfig | None = None, *, guard: Guard | None = None) -> None:
        """A client with ``config``'s settings (default: from ``APPBOOK_OUTBOUND_*``)."""
        self.config = config or OutboundConfig()
        self.guard = guard or Guard.from_config(self.config)
        self.retries, self.backoff = self.config.retries, self.config.backoff  # checked now
        self.max_response_bytes = self.config.max_response_bytes
        _hide_url_secrets_in_httpx_log()
        self._client = httpx.Client(
            transport=GuardedTransport(self.guard, ca_file=self.config.ca_file),
            timeout=self.config.timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": "appbook"},
        )

    def __enter__(self) -> OutboundClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def post_json(
        self, url: str, body: Any, *, headers: Mapping[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        """POST ``body`` as JSON (see :meth:`request`)."""
        return self.request("POST", url, json=body, headers=headers, **kw)

    def request(
        self,
        method: str,
        url: str,
        *,
        raise_for_status: bool = True,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request (``kwargs`` as for ``httpx.Client.request``), retrying connect
        errors and 5xx answers; OutboundError after the last try, or for a 4xx answer
        when ``raise_for_status``; OutboundRefused for a destination the guard refuses."""
        target, auth = _target(url)
        shown = f"{method} {safe_url(target)}"
        try:
            self.guard.check_host(target.host)
        except OutboundRefused as exc:
            raise OutboundRefused(f"{shown} refused: {exc.message}") from None
        if timeout is not None:
            kwargs["timeout"] = timeout
        tries = self.retries + 1
        attempt = 1
        outcome = self._try(method, target, auth, shown, kwargs)
        while _retryable(outcome) and attempt < tries:
            log.warning("%s: %s; trying again (%d of %d)", shown, _said(outcome), attempt, tries)
            time.sleep(self.backoff * 2 ** (attempt - 1))
            attempt += 1
            outcome = self._try(method, target, auth, shown, kwargs)
        if isinstance(outcome, httpx.Response) and not (raise_for_status and outcome.is_error):
            return outcome
        raise OutboundError(f"{shown} failed: {_said(outcome)}{_tries(attempt)}")

    def _try(
        self, method: str, target: httpx.URL, auth: Any, shown: str, kwargs: dict[str, Any]
    ) -> httpx.Response | Exception:
        """One try: the response, or the connect error to retry; raises what is final."""
        try:
            response = self._read(self._client.build_request(method, target, **kwargs), auth)
        except OutboundRefused as exc:
            raise OutboundRefused(f"{shown} refused: {exc.message}") from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return exc  # nothing was sent: safe to try again
        except httpx.TimeoutException:
            raise OutboundError(
                f"{shown} failed: no answer within {self._timeout(kwargs)}s"
            ) from None
        except httpx.HTTPError as exc:
            raise OutboundError(f"{shown} failed: {_reason(exc)}") from None
        log.info("%s: %d %s", shown, response.status_code, response.reason_phrase)
        return response

    def _read(self, request: httpx.Request, auth: Any) -> httpx.Response:
        """Send ``request`` and read its answer, at most ``max_response_bytes`` of it (a
        service that answers without end must not fill the worker's memory)."""
        limit = self.max_response_bytes
        streamed = self._client.send(request, auth=auth, stream=True)
        body = bytearray()
        try:
            for chunk in streamed.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise httpx.DecodingError(f"its answer is over {limit} bytes")
        finally:
            streamed.close()
        headers = streamed.headers.copy()
        for name in ("content-encoding", "content-length", "transfer-encoding"):
            headers.pop(name, None)  # the body below is decoded and whole
        return httpx.Response(
            streamed.status_code,
            headers=headers,
            content=bytes(body),
            request=request,
            extensions=streamed.extensions,
        )

    def _timeout(self, kwargs: dict[str, Any]) -> float:
        return float(kwargs.get("timeout") or self.config.timeout)


def _target(url: str) -> tuple[httpx.URL, tuple[str, str] | None]:
    """The URL to call, with any credentials moved out of it (so it never shows them)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        head = str(url).split("?", 1)[0].rsplit("@", 1)[-1][:100]
        raise OutboundError(f"{head!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise OutboundRefused(f"{safe_url(parsed)}: only http and https URLs may be called")
    auth = (parsed.username, parsed.password) if parsed.userinfo else None
    return parsed.copy_with(userinfo=b""), auth


def safe_url(url: str | httpx.URL) -> str:
    """``url`` fit for messages and logs: no user or password, query values hidden."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(an invalid URL)"
    query = "&".join(f"{key}=***" for key in dict(parsed.params)) if parsed.query else ""
    return str(parsed.copy_with(userinfo=b"", query=query.encode() or None, fragment=None))


def _retryable(outcome: httpx.Response | Exception) -> bool:
    return not isinstance(outcome, httpx.Response) or outcome.status_code >= 500


def _said(outcome: httpx.Response | Exception) -> str:
    if isinstance(outcome, httpx.Response):
        return f"answered {outcome.status_code} {outcome.reason_phrase}".rstrip()
    return f"could not connect ({_reason(outcome)})"


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _tries(tries: int) -> str:
    return f" (after {tries} tries)" if tries > 1 else ""
