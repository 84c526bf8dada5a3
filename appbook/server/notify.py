"""Notifications: the ``notify`` workflow step (an e-mail, or a webhook POST).

.. code-block:: yaml

    - name: tell_managers
      notify:
        email: {to: "role:managers, ops@example.org",
                subject: "Invoice {{ record.number }} needs approval",
                body: "Amount: {{ record.amount }}"}
    - name: tell_erp
      notify:
        webhook: {url: "https://erp.example.org/hooks/invoices",
                  body: {number: "{{ record.number }}", amount: "{{ record.amount }}"}}

``to``, ``subject``, ``body`` and ``url`` are sandboxed Jinja2 templates over the run
context (``record``, ``inputs``, ``steps``, ``run``). In a webhook body every string is
rendered; a string that is one ``{{ expression }}`` keeps the expression's type (a number
stays a number). The e-mail goes through the SMTP server of :class:`SmtpConfig`, the
webhook through the guarded client of :mod:`.http` with ``Idempotency-Key`` set to the
step's idempotency key (the same on every retry of one visit), which also makes the
e-mail's ``Message-ID``. Outputs say what was sent, never a secret; a failure (SMTP down, a
refused login, a 4xx, a 5xx after retries, a refused host) fails the attempt.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, time
from decimal import Decimal
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from .definitions.workflows import Email, Webhook
from .errors import NotFound, OutboundError
from .expressions import ExpressionError, evaluate, render
from .http import OutboundClient, safe_url
from .mail import recipients, send
from .outbound import OutboundConfig, SmtpConfig

if TYPE_CHECKING:
    from .engine import Appbook
    from .workflows.steps import StepCall

WHOLE = re.compile(r"\s*\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}\s*", re.DOTALL)


def step(call: StepCall) -> dict[str, Any]:
    """The ``notify`` step kind: send what the step describes; its outputs say what was sent."""
    notify = call.step.notify
    assert notify is not None  # the step is of this kind
    if notify.email is not None:
        outputs = email(call.app, notify.email, call.context, key=call.idempotency_key)
    else:
        assert notify.webhook is not None
        outputs = webhook(
            call.app, notify.webhook, call.context, key=call.idempotency_key, timeout=call.timeout
        )
    return {"outputs": outputs}


def email(app: Appbook, spec: Email, context: dict[str, Any], *, key: str) -> dict[str, Any]:
    """Render and send ``spec``; ``{"channel", "to", "skipped", "subject", "message_id"}``."""
    settings = SmtpConfig(parent=app.config).check()
    if not settings.host:
        raise OutboundError(
            "e-mail cannot be sent: no SMTP server is configured (set APPBOOK_SMTP_HOST)"
        )
    if not settings.from_address:
        raise OutboundError("e-mail cannot be sent: set APPBOOK_SMTP_FROM")
    to = recipients(
        app.users, render(spec.to, context, where="notify email to"), where="notify email"
    )
    subject = " ".join(render(spec.subject, context, where="notify email subject").split())
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = ", ".join(to.addresses)
    message["Subject"] = subject
    message["Message-ID"] = _message_id(app, key, settings.from_address)
    message.set_content(render(spec.body, context, where="notify email body") or "\n")
    refused = send(settings, _password(app, settings), message)
    return {
        "channel": "email",
        "to": to.addresses,
        "skipped": to.skipped,
        "refused": refused,
        "subject": subject,
        "message_id": message["Message-ID"],
    }


def webhook(
    app: Appbook,
    spec: Webhook,
    context: dict[str, Any],
    *,
    key: str,
    timeout: float | None = None,
) -> dict[str, Any]:
    """POST ``spec``'s body (rendered) as JSON; ``{"channel", "url", "status_code"}``."""
    url = render(spec.url, context, where="notify webhook url")
    body = _fill(spec.body, context) if spec.body is not None else _default_body(context)
    try:
        content = json.dumps(body, default=_jsonable).encode()
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"notify webhook body cannot be sent as JSON: {exc}") from None
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    with OutboundClient(OutboundConfig(parent=app.config)) as client:
        response = client.request("POST", url, content=content, headers=headers, timeout=timeout)
    return {"channel": "webhook", "url": safe_url(url), "status_code": response.status_code}


def _fill(value: Any, context: dict[str, Any], path: str = "body") -> Any:
    """``value`` with every string rendered (a lone ``{{ expression }}`` keeps its type)."""
    where = f"notify webhook {path}"
    if isinstance(value, str):
        whole = WHOLE.fullmatch(value)
        if whole is not None:
            return evaluate(whole["expr"].strip(), context, where=where)
        return render(value, context, where=where)
    if isinstance(value, dict):
        return {k: _fill(v, context, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, context, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _default_body(context: dict[str, Any]) -> dict[str, Any]:
    run = context.get("run") or {}
    return {k: run.get(k) for k in ("id", "component", "workflow", "step", "record_id")}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"a {type(value).__name__} is not JSON")


def _password(app: Appbook, settings: SmtpConfig) -> str | None:
    if not settings.user:
        return None
    try:
        return app.secrets.get(settings.password_secret)
    except NotFound as exc:
        raise NotFound(f"SMTP login as {settings.user!r} needs a password: {exc.message}") from None


def _message_id(app: Appbook, key: str, sender: str) -> str:
    """The same for every attempt at one visit of a step, so a resent e-mail is recognisable;
    unique across data layers (the key's run id is only unique in one database)."""
    place = app.engine.url.render_as_string(hide_password=True)
    digest = hashlib.sha256(f"{place}|{key}".encode()).hexdigest()[:16]
    domain = sender.rpartition("@")[2].strip("> ") or "appbook.invalid"
    return f"<appbook.{key.replace(':', '.')}.{digest}@{domain}>"
