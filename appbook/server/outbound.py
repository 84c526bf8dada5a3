"""Settings for calls to outside services: the HTTP guard (:mod:`.http`) and SMTP (:mod:`.notify`).

Each value comes from explicit configuration (``c.OutboundConfig.allow_private = [...]``, or
a ``parent`` whose config has it), then its ``APPBOOK_*`` variable, then the default (under
``appbook serve`` the engine's config carries no traitlets config yet: use the variables).
``environment()`` gives the variables a worker needs to behave the same; the SMTP password
is never among them: only the *name* of the secret that holds it.

>>> SmtpConfig(parent=app.config).host
'smtp.example.org'
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import Any, TypeVar

from traitlets import CaselessStrEnum, Float, Int, List, Unicode, default
from traitlets.config import Configurable

from .errors import ValidationError

T = TypeVar("T")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SECURITY = ("starttls", "ssl", "none")


def from_env(name: str, fallback: T, parse: Callable[[str], T], what: str) -> T:
    """``$name`` parsed, or ``fallback`` when unset or blank; ValidationError naming the
    variable when it is not ``what``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return fallback
    try:
        return parse(raw)
    except ValueError:
        raise ValidationError({name: [f"{raw!r} is not {what}"]}, where="settings") from None


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


class OutboundConfig(Configurable):
    """How Appbook calls outside HTTP services (webhooks now, dataflow calls next)."""

    allowed_hosts = List(
        Unicode(),
        help="Host names outside calls may go to (exact, or *.example.org for subdomains); "
        "empty means any host whose addresses are public. Default: "
        "$APPBOOK_OUTBOUND_ALLOWED_HOSTS (comma-separated).",
    ).tag(config=True)

    allow_private = List(
        Unicode(),
        help="Networks (CIDR, e.g. 10.0.0.0/8, 127.0.0.1/32) that outside calls may reach "
        "although they are loopback, link-local, private, unspecified or multicast; by "
        "default none are. Default: $APPBOOK_OUTBOUND_ALLOW_PRIVATE (comma-separated).",
    ).tag(config=True)

    timeout = Float(
        min=0.001,
        help="Seconds to connect, and between bytes of a response. "
        "Default: $APPBOOK_OUTBOUND_TIMEOUT, else 10.",
    ).tag(config=True)

    retries = Int(
        min=0,
        help="Further tries after a connect error or a 5xx answer. "
        "Default: $APPBOOK_OUTBOUND_RETRIES, else 2.",
    ).tag(config=True)

    backoff = Float(
        min=0.0,
        help="Seconds before the first retry, doubled for each next one. "
        "Default: $APPBOOK_OUTBOUND_BACKOFF, else 0.5.",
    ).tag(config=True)

    max_response_bytes = Int(
        min=1,
        help="Largest answer read from an outside service; a longer one fails the call. "
        "Default: $APPBOOK_OUTBOUND_MAX_RESPONSE_BYTES, else 10 MiB.",
    ).tag(config=True)

    ca_file = Unicode(
        help="CA certificates (PEM) to verify https services with, instead of certifi's. "
        "Default: $APPBOOK_OUTBOUND_CA_FILE.",
    ).tag(config=True)

    @default("allowed_hosts")
    def _default_allowed_hosts(self) -> list[str]:
        return _items(os.environ.get("APPBOOK_OUTBOUND_ALLOWED_HOSTS", ""))

    @default("allow_private")
    def _default_allow_private(self) -> list[str]:
        return _items(os.environ.get("APPBOOK_OUTBOUND_ALLOW_PRIVATE", ""))

    @default("timeout")
    def _default_timeout(self) -> float:
        return from_env("APPBOOK_OUTBOUND_TIMEOUT", 10.0, _positive, "a number of seconds")

    @default("retries")
    def _default_retries(self) -> int:
        return from_env("APPBOOK_OUTBOUND_RETRIES", 2, _count, "a whole number >= 0")

    @default("backoff")
    def _default_backoff(self) -> float:
        return from_env("APPBOOK_OUTBOUND_BACKOFF", 0.5, _seconds, "a number of seconds")

    @default("max_response_bytes")
    def _default_max_response_bytes(self) -> int:
        return from_env(
            "APPBOOK_OUTBOUND_MAX_RESPONSE_BYTES", 10 * 1024 * 1024, _positive_int, "a size"
        )

    @default("ca_file")
    def _default_ca_file(self) -> str:
        return os.environ.get("APPBOOK_OUTBOUND_CA_FILE", "").strip()

    def networks(self) -> list[Network]:
        """``allow_private`` parsed; ValidationError naming every entry that is no network."""
        found: list[Network] = []
        bad: list[str] = []
        for entry in self.allow_private:
            try:
                found.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                bad.append(f"{entry!r} is not a network (a CIDR such as 10.0.0.0/8)")
        if bad:
            key = "allow_private (APPBOOK_OUTBOUND_ALLOW_PRIVATE)"
            raise ValidationError({key: bad}, where="outbound settings")
        return found

    def environment(self) -> dict[str, str]:
        """The ``APPBOOK_OUTBOUND_*`` variables that give another process these settings."""
        env = {
            "APPBOOK_OUTBOUND_TIMEOUT": repr(self.timeout),
            "APPBOOK_OUTBOUND_RETRIES": str(self.retries),
            "APPBOOK_OUTBOUND_BACKOFF": repr(self.backoff),
            "APPBOOK_OUTBOUND_MAX_RESPONSE_BYTES": str(self.max_response_bytes),
        }
        if self.allowed_hosts:
            env["APPBOOK_OUTBOUND_ALLOWED_HOSTS"] = ",".join(self.allowed_hosts)
        if self.allow_private:
            env["APPBOOK_OUTBOUND_ALLOW_PRIVATE"] = ",".join(self.allow_private)
        if self.ca_file:
            env["APPBOOK_OUTBOUND_CA_FILE"] = self.ca_file
        return env


class SmtpConfig(Configurable):
    """The SMTP server e-mail notifications are sent through."""

    host = Unicode(
        help="SMTP server host; empty means e-mail cannot be sent. Default: $APPBOOK_SMTP_HOST.",
    ).tag(config=True)

    port = Int(
        min=0,
        max=65535,
        help="SMTP port; 0 picks 587 (starttls), 465 (ssl) or 25 (none). "
        "Default: $APPBOOK_SMTP_PORT, else 0.",
    ).tag(config=True)

    security = CaselessStrEnum(
        list(SECURITY),
        help="starttls (upgrade a plain connection), ssl (TLS from the start) or none. "
        "Default: $APPBOOK_SMTP_SECURITY, else starttls.",
    ).tag(config=True)

    user = Unicode(
        help="User to log in as; empty means no login. Default: $APPBOOK_SMTP_USER.",
    ).tag(config=True)

    password_secret = Unicode(
        help="Name of the secret holding the password (set it with: appbook secrets set "
        "NAME). Default: $APPBOOK_SMTP_PASSWORD_SECRET, else smtp.",
    ).tag(config=True)

    from_address = Unicode(
        help="The From address of notifications. Default: $APPBOOK_SMTP_FROM.",
    ).tag(config=True)

    timeout = Float(
        min=0.001,
        help="Seconds to wait for the server. Default: $APPBOOK_SMTP_TIMEOUT, else 30.",
    ).tag(config=True)

    ca_file = Unicode(
        help="CA certificates (PEM) to verify the server with, instead of the system's. "
        "Default: $APPBOOK_SMTP_CA_FILE.",
    ).tag(config=True)

    @default("host")
    def _default_host(self) -> str:
        return os.environ.get("APPBOOK_SMTP_HOST", "").strip()

    @default("port")
    def _default_port(self) -> int:
        return from_env("APPBOOK_SMTP_PORT", 0, _port, "a port number (1-65535)")

    @default("security")
    def _default_security(self) -> str:
        return from_env("APPBOOK_SMTP_SECURITY", "starttls", _security, " or ".join(SECURITY))

    @default("user")
    def _default_user(self) -> str:
        return os.environ.get("APPBOOK_SMTP_USER", "").strip()

    @default("password_secret")
    def _default_password_secret(self) -> str:
        return os.environ.get("APPBOOK_SMTP_PASSWORD_SECRET", "").strip() or "smtp"

    @default("from_address")
    def _default_from_address(self) -> str:
        return os.environ.get("APPBOOK_SMTP_FROM", "").strip()

    @default("timeout")
    def _default_timeout(self) -> float:
        return from_env("APPBOOK_SMTP_TIMEOUT", 30.0, _positive, "a number of seconds")

    @default("ca_file")
    def _default_ca_file(self) -> str:
        return os.environ.get("APPBOOK_SMTP_CA_FILE", "").strip()

    def check(self) -> SmtpConfig:
        """These settings, each read now: a bad variable is named before anything is sent."""
        self.environment()
        return self

    @property
    def effective_port(self) -> int:
        """The port to connect to (``port``, or the usual one for ``security``)."""
        return self.port or {"starttls": 587, "ssl": 465}.get(self.security, 25)

    def environment(self) -> dict[str, str]:
        """The ``APPBOOK_SMTP_*`` variables that give another process these settings."""
        values: dict[str, Any] = {
            "APPBOOK_SMTP_HOST": self.host,
            "APPBOOK_SMTP_PORT": self.port or "",
            "APPBOOK_SMTP_SECURITY": self.security,
            "APPBOOK_SMTP_USER": self.user,
            "APPBOOK_SMTP_PASSWORD_SECRET": self.password_secret,
            "APPBOOK_SMTP_FROM": self.from_address,
            "APPBOOK_SMTP_TIMEOUT": repr(self.timeout),
            "APPBOOK_SMTP_CA_FILE": self.ca_file,
        }
        return {k: str(v) for k, v in values.items() if v != ""}


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError(text)
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError(text)
    return value


def _security(text: str) -> str:
    if text.lower() not in SECURITY:
        raise ValueError(text)
    return text.lower()
