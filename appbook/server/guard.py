"""The request-forgery guard of outside calls: which hosts and addresses they may reach.

Addresses are checked *after DNS resolution*, inside the socket connect of httpcore's
network backend, and the connection goes to the address that was checked: a DNS answer that
changes between check and connect (rebinding) cannot reach a refused address. See
:mod:`.http` for the client built on it.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from .errors import OutboundRefused, ValidationError
from .outbound import Network, OutboundConfig

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_HINT = "allow it with APPBOOK_OUTBOUND_ALLOW_PRIVATE"


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order, once each."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped ``::ffff:…``, 6to4 ``2002:…``, NAT64
    ``64:ff9b::…``), else ``address`` itself: a call to it reaches that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def why_refused(address: IPAddress) -> str | None:
    """What makes ``address`` unfit for an outside call, or None for a public address."""
    address = embedded(address)  # ::ffff:127.0.0.1 is 127.0.0.1
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("not a public address", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True)
class Guard:
    """Which destinations outside calls may reach."""

    allowed_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[Network, ...] = ()
    resolve: Resolver = system_resolver

    @classmethod
    def from_config(cls, config: OutboundConfig, *, resolve: Resolver = system_resolver) -> Guard:
        """The guard ``config`` describes (ValidationError for a bad network)."""
        hosts = tuple(h.strip().lower().rstrip(".") for h in config.allowed_hosts if h.strip())
        return cls(hosts, tuple(config.networks()), resolve)

    def check_host(self, host: str) -> None:
        """OutboundRefused unless ``host`` is allowed by name (any is, with no list)."""
        name = host.lower().rstrip(".")
        if not self.allowed_hosts or any(_matches(name, p) for p in self.allowed_hosts):
            return
        raise OutboundRefused(
            f"host {name!r} is not in the allowed hosts ({', '.join(self.allowed_hosts)}; "
            "APPBOOK_OUTBOUND_ALLOWED_HOSTS)"
        )

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` a call may connect to: resolved once, each checked.
        OutboundRefused if none may be used; httpcore.ConnectError if it does not resolve."""
        try:
            found = self.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        usable, refused = [], []
        for text in found:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
            reason = why_refused(address)
            if reason is None or self._allowed(address):
                usable.append(text)
            else:
                refused.append(f"{text} ({reason})")
        if not usable:
            shown = ", ".join(refused) or "no address"
            subject = f"{host} resolves to" if host not in found else "address"
            raise OutboundRefused(f"{subject} {shown}; {ALLOW_HINT}")
        return usable

    def _allowed(self, address: IPAddress) -> bool:
        candidates = [address, embedded(address)]
        return any(
            a in n for a in candidates for n in self.allowed_networks if a.version == n.version
        )


def _matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to addresses the guard checked."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Resolve ``host``, check it, and connect to the first checked address that answers."""
        self.guard.check_host(host)
        failure: Exception | None = None
        for address in self.guard.addresses(host, port):
            try:  # an address literal: no second DNS lookup happens here
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        """Refused: outside calls go over TCP only."""
        raise OutboundRefused("outside calls may not use unix sockets")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose sockets pass the guard."""

    def __init__(self, guard: Guard, *, ca_file: str = "") -> None:
        """Connections checked by ``guard``; https verified with ``ca_file`` (PEM) if given,
        else with certifi's CAs."""
        super().__init__(trust_env=False)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("this httpx version keeps no connection pool to guard")
        # httpx builds its pool without a way to pass a network backend; the pool's own
        # parameter is public, so the pool is rebuilt with the guarded backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(ca_file), network_backend=GuardedBackend(guard)
        )


def _ssl_context(ca_file: str) -> ssl.SSLContext:
    if not ca_file:
        return httpx.create_ssl_context(trust_env=False)
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        key = "ca_file (APPBOOK_OUTBOUND_CA_FILE)"
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValidationError({key: [f"{ca_file}: {reason}"]}, where="outbound settings") from None
