"""The notify step on SQLite and PostgreSQL: e-mail through a real SMTP server (aiosmtpd,
STARTTLS, login with the password from the secret store) and webhooks to a real local HTTP
server through the guard; the password never in logs, errors, run records or outputs."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.errors import ValidationError
from appbook.server.expressions import ExpressionError, render
from appbook.server.outbound import SmtpConfig
from tests.server.outside import Mailbox, Receiver, self_signed, smtp_server

PASSWORD = "smtp-pa55-Xq81-not-for-logs"

INVOICES = """\
name: invoices
fields:
  number: {type: string}
  amount: {type: number}
workflows:
  mail:
    stages:
      - name: s
        steps:
          - name: tell
            notify:
              email:
                to: "{{ inputs.to }}"
                subject: "Invoice {{ record.number }}\\nneeds approval"
                body: "Amount: {{ record.amount }}\\nStarted by {{ run.created_by }}"
  broken:
    stages:
      - name: s
        steps:
          - name: tell
            notify: {email: {to: ops@example.org, subject: "Invoice {{ record.nope }}"}}
  hook:
    stages:
      - name: s
        steps:
          - name: post
            notify:
              webhook:
                url: "{{ inputs.url }}"
                body:
                  number: "{{ record.number }}"
                  amount: "{{ record.amount }}"
                  text: "Invoice {{ record.number }} of {{ record.amount }}"
                  tags: [fixed, "{{ inputs.tag }}"]
                  count: 3
  retried:
    stages:
      - name: s
        steps:
          - name: post
            notify: {webhook: {url: "{{ inputs.url }}", body: {n: "{{ record.number }}"}}}
            retries: {count: 1, backoff: 1m}
  ping:
    stages:
      - name: s
        steps:
          - {name: post, notify: {webhook: {url: "{{ inputs.url }}"}}}
"""

SMTP_VARIABLES = (
    "HOST",
    "PORT",
    "SECURITY",
    "USER",
    "PASSWORD_SECRET",
    "FROM",
    "TIMEOUT",
    "CA_FILE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SMTP_VARIABLES:
        monkeypatch.delenv(f"APPBOOK_SMTP_{name}", raising=False)
    for name in (
        "ALLOWED_HOSTS",
        "ALLOW_PRIVATE",
        "TIMEOUT",
        "RETRIES",
        "BACKOFF",
        "MAX_RESPONSE_BYTES",
    ):
        monkeypatch.delenv(f"APPBOOK_OUTBOUND_{name}", raising=False)
    monkeypatch.setenv("APPBOOK_OUTBOUND_BACKOFF", "0")


@pytest.fixture
def invoices(app: Appbook) -> dict[str, Any]:
    app.publish_texts({"invoices.component.yaml": INVOICES})
    app.users.add("ada", roles=["managers"], email="ada@example.org")
    app.users.add("bob", roles=["managers"])  # no address: skipped, and said so
    app.users.add("cy", email="cy@example.org")
    return app["invoices"].create({"number": "A-1", "amount": 12.5})


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox(accounts={"appbook": PASSWORD})


@pytest.fixture
def smtp(
    tmp_path: Path, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, app: Appbook
) -> Iterator[int]:
    """A STARTTLS SMTP server that wants a login; Appbook set up to use it."""
    cert, context = self_signed(tmp_path)
    with smtp_server(mailbox, tls=context) as server:
        for name, value in {
            "HOST": "127.0.0.1",
            "PORT": str(server.port),
            "SECURITY": "starttls",
            "CA_FILE": str(cert),
            "USER": "appbook",
            "FROM": "Appbook <appbook@example.org>",
        }.items():
            monkeypatch.setenv(f"APPBOOK_SMTP_{name}", value)
        app.secrets.set("smtp", PASSWORD)
        yield int(server.port)


def run(app: Appbook, workflow: str, record: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    started = app.runs.start("invoices", workflow, record_id=record["id"], inputs=inputs)
    return app.runs.advance(int(started["id"]))


def everything_recorded(app: Appbook, result: dict[str, Any]) -> str:
    return repr(app.runs.get(int(result["id"]))) + repr(app.runs.steps(int(result["id"])))


# -- e-mail -------------------------------------------------------------------------------
def test_email_to_a_role_a_user_and_an_address(
    app: Appbook,
    invoices: dict[str, Any],
    smtp: int,
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        result = run(app, "mail", invoices, to="role:managers, cy, Ops <ops@example.org>")
    assert result["status"] == "succeeded", result["error"]
    [mail] = mailbox.mails
    assert mail.login == "appbook"  # logged in with the password from the secret store
    assert sorted(mail.recipients) == ["ada@example.org", "cy@example.org", "ops@example.org"]
    assert mail.message["To"] == "ada@example.org, cy@example.org, Ops <ops@example.org>"
    assert mail.message["From"] == "Appbook <appbook@example.org>"
    assert mail.message["Subject"] == "Invoice A-1 needs approval"  # one line: no injection
    body = mail.message.get_payload().replace("\r\n", "\n").strip()
    assert body == "Amount: 12.5\nStarted by tester"
    outputs = result["outputs"]["tell"]
    assert outputs == {
        "channel": "email",
        "to": ["ada@example.org", "cy@example.org", "Ops <ops@example.org>"],
        "skipped": ["bob"],
        "refused": [],
        "subject": "Invoice A-1 needs approval",
        "message_id": mail.message["Message-ID"],
    }
    assert outputs["message_id"].startswith(f"<appbook.{result['id']}.tell.1.")
    assert PASSWORD not in caplog.text
    assert PASSWORD not in everything_recorded(app, result)


def test_a_refused_login_fails_the_step_without_showing_the_password(
    app: Appbook, invoices: dict[str, Any], smtp: int, mailbox: Mailbox
) -> None:
    app.secrets.set("smtp", "wrong-Pa55-zz91")
    result = run(app, "mail", invoices, to="ada")
    assert result["status"] == "failed"
    assert result["error"] == (
        f"step tell: SMTP server 127.0.0.1:{smtp} refused the login of 'appbook': "
        "535 5.7.8 Authentication credentials invalid"
    )
    assert set(mailbox.logins) == {("appbook", "wrong-Pa55-zz91")} and mailbox.mails == []
    assert "wrong-Pa55-zz91" not in everything_recorded(app, result)


def test_smtp_down_fails_the_step(
    app: Appbook, invoices: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name, value in {"HOST": "127.0.0.1", "PORT": str(port), "FROM": "a@example.org"}.items():
        monkeypatch.setenv(f"APPBOOK_SMTP_{name}", value)
    result = run(app, "mail", invoices, to="ada")
    assert result["status"] == "failed"
    assert result["error"] == (
        f"step tell: SMTP server 127.0.0.1:{port} could not be reached: Connection refused"
    )


def test_plain_smtp_without_login(
    app: Appbook, invoices: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Mailbox()
    with smtp_server(box) as server:
        monkeypatch.setenv("APPBOOK_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("APPBOOK_SMTP_PORT", str(server.port))
        monkeypatch.setenv("APPBOOK_SMTP_SECURITY", "none")
        monkeypatch.setenv("APPBOOK_SMTP_FROM", "appbook@example.org")
        result = run(app, "mail", invoices, to="cy")
    assert result["status"] == "succeeded", result["error"]
    assert [(m.recipients, m.login) for m in box.mails] == [(["cy@example.org"], None)]


def test_smtp_over_tls_from_the_start(
    app: Appbook, invoices: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    box = Mailbox(accounts={"appbook": PASSWORD})
    cert, context = self_signed(tmp_path)
    with smtp_server(box, context, implicit=True) as server:
        for name, value in {
            "HOST": "127.0.0.1",
            "PORT": str(server.port),
            "SECURITY": "ssl",
            "CA_FILE": str(cert),
            "USER": "appbook",
            "FROM": "appbook@example.org",
        }.items():
            monkeypatch.setenv(f"APPBOOK_SMTP_{name}", value)
        app.secrets.set("smtp", PASSWORD)
        result = run(app, "mail", invoices, to="ada")
    assert result["status"] == "succeeded", result["error"]
    assert [(m.recipients, m.login) for m in box.mails] == [(["ada@example.org"], "appbook")]


def test_an_untrusted_certificate_fails_the_step(
    app: Appbook, invoices: dict[str, Any], smtp: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APPBOOK_SMTP_CA_FILE")  # the system's CAs do not know the test's
    result = run(app, "mail", invoices, to="ada")
    assert result["status"] == "failed"
    assert result["error"].startswith(f"step tell: SMTP server 127.0.0.1:{smtp} failed: ")
    assert "CERTIFICATE_VERIFY_FAILED" in result["error"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {},
            "step tell: e-mail cannot be sent: no SMTP server is configured (set APPBOOK_SMTP_HOST)",
        ),
        (
            {"HOST": "127.0.0.1"},
            "step tell: e-mail cannot be sent: set APPBOOK_SMTP_FROM",
        ),
        (
            {"HOST": "h", "PORT": "smtp"},
            "step tell: settings: invalid values (APPBOOK_SMTP_PORT: 'smtp' is not a port number (1-65535))",
        ),
        (
            {"HOST": "h", "SECURITY": "tls"},
            "step tell: settings: invalid values (APPBOOK_SMTP_SECURITY: 'tls' is not starttls or ssl or none)",
        ),
        (
            {"HOST": "127.0.0.1", "FROM": "a@example.org", "USER": "appbook"},
            "step tell: SMTP login as 'appbook' needs a password: no secret 'smtp'; set it with: appbook secrets set smtp (or app.secrets.set('smtp', value))",
        ),
    ],
)
def test_missing_or_bad_settings_are_named(
    app: Appbook,
    invoices: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    message: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(f"APPBOOK_SMTP_{name}", value)
    result = run(app, "mail", invoices, to="ada")
    assert (result["status"], result["error"]) == ("failed", message)


def test_recipients_that_name_nobody_are_each_listed(
    app: Appbook, invoices: dict[str, Any], smtp: int, mailbox: Mailbox
) -> None:
    app.users.add("dee", email="dee@example.org")
    app.users.disable("dee")
    app.users.add("eve", roles=["auditors"])
    to = "ghost, bob, role:ghosts, auditors, dee, x@y, ada, a@b.org\nBcc: evil@c.org"
    result = run(app, "mail", invoices, to=to)
    assert result["status"] == "failed"
    assert result["error"] == (
        "step tell: notify email: invalid values (to: no user or role 'ghost', user 'bob' has "
        "no e-mail address (appbook users add … --email), no user or role 'ghosts', no user "
        "of role 'auditors' has an e-mail address, user 'dee' is disabled, 'x@y' is not an "
        "e-mail address, 'a@b.org\\nBcc: evil@c.org' contains a line break)"
    )
    assert mailbox.mails == []
    empty = run(app, "mail", invoices, to=" , ")
    assert (
        empty["error"]
        == "step tell: notify email: invalid values (to: ' , ' names nobody to send to)"
    )


def test_a_bad_template_fails_the_step_naming_it(
    app: Appbook, invoices: dict[str, Any], smtp: int, mailbox: Mailbox
) -> None:
    result = run(app, "broken", invoices)
    assert result["error"] == (
        "step tell: notify email subject: template 'Invoice {{ record.nope }}': "
        "'dict object' has no attribute 'nope'"
    )
    with pytest.raises(ExpressionError) as caught:
        render("Hi {% if %}", {}, where="notify email body")
    assert caught.value.message == (
        "notify email body: 'Hi {% if %}' is not a valid template (line 1): "
        "Expected an expression, got 'end of statement block'"
    )
    assert mailbox.mails == []


def test_smtp_settings_reach_child_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    given = {"host": "mail.example.org", "port": 2525, "user": "ops", "from_address": "a@b.org"}
    env = EngineConfig(config=Config({"SmtpConfig": given})).environment()
    assert env["APPBOOK_SMTP_HOST"] == "mail.example.org"
    assert env["APPBOOK_SMTP_PASSWORD_SECRET"] == "smtp"  # the secret's name, not a value
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    child = SmtpConfig()
    assert (child.host, child.port, child.user, child.from_address, child.security) == (
        "mail.example.org",
        2525,
        "ops",
        "a@b.org",
        "starttls",
    )
    assert child.effective_port == 2525 and SmtpConfig(security="ssl", port=0).effective_port == 465


def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPBOOK_SMTP_TIMEOUT", "later")
    with pytest.raises(ValidationError, match="APPBOOK_SMTP_TIMEOUT: 'later' is not a number"):
        EngineConfig().environment()


# -- webhooks -----------------------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def test_a_webhook_to_loopback_is_refused_by_default(
    app: Appbook, invoices: dict[str, Any], receiver: Receiver
) -> None:
    result = run(app, "hook", invoices, url=receiver.url(), tag="x")
    assert result["status"] == "failed"
    assert result["error"] == (
        f"step post: POST {receiver.url()} refused: address 127.0.0.1 (loopback); allow it "
        "with APPBOOK_OUTBOUND_ALLOW_PRIVATE"
    )
    assert receiver.hits == []
    metadata = run(app, "hook", invoices, url="http://169.254.169.254/latest/meta-data", tag="x")
    assert "169.254.169.254 (link-local)" in metadata["error"]


def test_a_webhook_posts_the_rendered_body_with_the_idempotency_key(
    app: Appbook, invoices: dict[str, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPBOOK_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1/32")
    result = run(app, "hook", invoices, url=receiver.url("/hook?key=abc"), tag="x")
    assert result["status"] == "succeeded", result["error"]
    [hit] = receiver.hits
    assert hit.json() == {
        "number": "A-1",
        "amount": 12.5,  # a lone expression keeps its type
        "text": "Invoice A-1 of 12.5",
        "tags": ["fixed", "x"],
        "count": 3,
    }
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["idempotency-key"] == f"{result['id']}:post:1"
    assert result["outputs"]["post"] == {
        "channel": "webhook",
        "url": f"http://127.0.0.1:{receiver.port}/hook?key=***",
        "status_code": 200,
    }


def test_a_retried_webhook_step_sends_the_same_idempotency_key(
    app: Appbook, invoices: dict[str, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPBOOK_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1/32")
    monkeypatch.setenv("APPBOOK_OUTBOUND_RETRIES", "0")  # the step's retries decide here
    receiver.answer(500)
    first = run(app, "retried", invoices, url=receiver.url())
    assert first["status"] == "waiting"
    assert first["error"] == (
        f"step post: POST {receiver.url()} failed: answered 500 Internal Server Error"
    )
    again = app.runs.advance(int(first["id"]), now=first["wake_at"] + timedelta(seconds=1))
    assert again["status"] == "succeeded", again["error"]
    keys = [hit.headers["idempotency-key"] for hit in receiver.hits]
    assert keys == [f"{first['id']}:post:1"] * 2
    steps = app.runs.steps(int(first["id"]))
    assert [(s["attempt"], s["status"]) for s in steps] == [(1, "failed"), (2, "succeeded")]


def test_a_webhook_without_a_body_posts_the_run(
    app: Appbook, invoices: dict[str, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPBOOK_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
    result = run(app, "ping", invoices, url=receiver.url(host="localhost"))
    assert result["status"] == "succeeded", result["error"]
    assert receiver.hits[0].json() == {
        "id": result["id"],
        "component": "invoices",
        "workflow": "ping",
        "step": "post",
        "record_id": invoices["id"],
    }


def test_a_webhook_answering_4xx_fails_the_step(
    app: Appbook, invoices: dict[str, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPBOOK_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1/32")
    receiver.answer(422)
    result = run(app, "ping", invoices, url=receiver.url())
    assert (result["status"], result["error"]) == (
        "failed",
        f"step post: POST {receiver.url()} failed: answered 422 Unprocessable Entity",
    )
