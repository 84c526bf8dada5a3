"""E-mail: who a notification goes to, and sending it over SMTP (standard library only).

A ``to`` list names, separated by commas, addresses (``ops@example.org``), users
(``ada`` or ``user:ada``: their ``email`` in ``appbook_users``) and roles (``managers`` or
``role:managers``: every enabled user holding it). The SMTP password is read from the
secret store by name when a message is sent, and kept out of every message and log line.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, parseaddr

from .errors import NotFound, OutboundError, ValidationError
from .outbound import SmtpConfig
from .users import EMAIL, User, Users

log = logging.getLogger(__name__)


@dataclass
class Recipients:
    """Addresses to send to, and users of a role left out because they have none."""

    addresses: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def recipients(users: Users, to: str, *, where: str) -> Recipients:
    """The addresses ``to`` names; ValidationError listing every name that gives none."""
    found, problems = Recipients(), []
    for entry in (part.strip() for part in to.split(",")):
        if not entry:
            continue
        try:
            _resolve(users, entry, found)
        except (NotFound, ValueError) as exc:
            problems.append(getattr(exc, "message", None) or str(exc))
    if not found.addresses and not problems:
        problems.append(f"{to!r} names nobody to send to")
    if problems:
        raise ValidationError({"to": problems}, where=where)
    found.addresses = list(dict.fromkeys(found.addresses))
    return found


def _resolve(users: Users, entry: str, found: Recipients) -> None:
    if "\n" in entry or "\r" in entry:  # a header injection, or a template gone wrong
        raise ValueError(f"{entry!r} contains a line break")
    kind, sep, name = entry.partition(":")
    if sep and kind in ("user", "role"):
        entry = name.strip()
    else:
        kind = "address" if "@" in entry else "name"
    if kind == "address":
        display, address = parseaddr(entry)
        if not EMAIL.fullmatch(address):
            raise ValueError(f"{entry!r} is not an e-mail address")
        found.addresses.append(formataddr((display, address)))
    elif kind == "user" or (kind == "name" and _is_user(users, entry)):
        found.addresses.append(_address_of(users.get(entry)))
    else:
        _role(users, entry, found)


def _is_user(users: Users, name: str) -> bool:
    try:
        users.get(name)
    except NotFound:
        return False
    return True


def _address_of(user: User) -> str:
    if user.disabled:
        raise ValueError(f"user {user.name!r} is disabled")
    if not user.email:
        raise ValueError(f"user {user.name!r} has no e-mail address (appbook users add … --email)")
    return user.email


def _role(users: Users, role: str, found: Recipients) -> None:
    holders = users.with_role(role)
    if not holders:
        if not any(role in u.roles for u in users.all()):
            raise NotFound(f"no user or role {role!r}")
        raise ValueError(f"role {role!r} has no enabled user")
    with_email = [u for u in holders if u.email]
    if not with_email:
        raise ValueError(f"no user of role {role!r} has an e-mail address")
    found.addresses.extend(u.email for u in with_email)
    found.skipped.extend(u.name for u in holders if not u.email)


def send(settings: SmtpConfig, password: str | None, message: EmailMessage) -> list[str]:
    """Send ``message`` through the configured server; the recipients it refused (if it
    accepted some). OutboundError saying what failed, never quoting the password."""
    where = f"SMTP server {settings.host}:{settings.effective_port}"
    try:
        return _send(settings, password, message)
    except smtplib.SMTPAuthenticationError as exc:
        reason = f"refused the login of {settings.user!r}: {_said(exc)}"
    except smtplib.SMTPRecipientsRefused as exc:
        reason = f"refused every recipient ({', '.join(exc.recipients)})"
    except smtplib.SMTPResponseException as exc:
        reason = f"answered {_said(exc)}"
    except (smtplib.SMTPException, ssl.SSLError) as exc:
        reason = f"failed: {exc}"
    except OSError as exc:
        reason = f"could not be reached: {exc.strerror or exc}"
    if password:
        reason = reason.replace(password, "***")
    raise OutboundError(f"{where} {reason}")


def _send(settings: SmtpConfig, password: str | None, message: EmailMessage) -> list[str]:
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    host, port, timeout = settings.host, settings.effective_port, settings.timeout
    if settings.security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if settings.security == "starttls":
            smtp.starttls(context=context)
        if settings.user:
            smtp.login(settings.user, password or "")
        refused = smtp.send_message(message)
    log.info("e-mail %s sent through %s:%d", message["Message-ID"], host, port)
    return sorted(refused)


def _said(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
    return f"{exc.smtp_code} {text}".strip()
