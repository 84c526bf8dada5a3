"""Reference app 1's workflows end to end, as published from notebooks/examples: the nightly
cron marks unpaid invoices past due Overdue with a notebook step and mails accounting; an
invoice over 10,000 waits for a manager's approval and its creator hears the outcome."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from appbook.server.engine import Appbook
from appbook.server.workflows.triggers import TriggerService
from tests.notebooks.test_examples import EXAMPLES
from tests.server.outside import Mailbox, smtp_server

pytestmark = pytest.mark.slow
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    """A local SMTP server; Appbook's mail settings point at it."""
    box = Mailbox()
    with smtp_server(box) as server:
        settings = {"HOST": "127.0.0.1", "PORT": str(server.port), "SECURITY": "none"}
        for name, value in {**settings, "FROM": "appbook@example.org"}.items():
            monkeypatch.setenv(f"APPBOOK_SMTP_{name}", value)
        monkeypatch.delenv("APPBOOK_SMTP_USER", raising=False)
        yield box


@pytest.fixture
def examples(app: Appbook) -> Appbook:
    app.publish(EXAMPLES)
    app.users.add("ada", roles=["managers"], email="ada@example.org")
    app.users.add("carl", roles=["accounting"], email="carl@example.org")
    app.users.add("cy", email="cy@example.org")
    return app


def advance_all(app: Appbook, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [app.runs.advance(int(r["id"])) for r in runs]


def test_the_nightly_workflow_marks_overdue_invoices_and_mails_accounting(
    examples: Appbook, mailbox: Mailbox
) -> None:
    invoices = examples["invoices"]
    past, future = NOW - dt.timedelta(days=3), NOW + dt.timedelta(days=3)
    made = [
        invoices.create({"number": n, "title": n, "amount": 10, "due_date": due, "status": s})
        for n, due, s in [("L-1", past, 0), ("L-2", past, 1), ("F-1", future, 0), ("P-1", past, 3)]
    ]
    triggers = TriggerService(examples, "test")
    assert triggers.tick(now=NOW) == []  # first sight of the schedule: counts from now
    paris = NOW.astimezone(ZoneInfo("Europe/Paris"))
    due = croniter("0 2 * * *", paris).get_next(dt.datetime)
    (run,) = triggers.tick(now=due.astimezone(dt.UTC) + dt.timedelta(seconds=1))
    assert run["workflow"] == "overdue" and run["trigger"] == "cron"
    (done,) = advance_all(examples, [run])
    assert done["status"] == "succeeded", done["error"]
    assert [invoices.get(r["id"])["status"] for r in made] == [4, 4, 0, 3]
    assert done["outputs"]["scan"] == {"count": 2, "numbers": ["L-1", "L-2"]}
    (mail,) = mailbox.mails
    assert mail.recipients == ["carl@example.org"]
    assert mail.message["Subject"] == "2 invoice(s) are now overdue"
    assert "L-1, L-2" in mail.message.get_payload()
    scan = next(s for s in examples.runs.steps(int(run["id"])) if s["step"] == "scan")
    assert scan["notebook_file"]  # the executed notebook is kept
    # Nothing more is late: the next night marks none and mails nobody.
    (again,) = triggers.tick(now=due.astimezone(dt.UTC) + dt.timedelta(days=1, seconds=1))
    (quiet,) = advance_all(examples, [again])
    assert quiet["status"] == "succeeded" and quiet["outputs"]["scan"]["count"] == 0
    assert len(mailbox.mails) == 1


def test_an_invoice_over_10000_waits_for_a_manager(examples: Appbook, mailbox: Mailbox) -> None:
    clerk = examples.as_user("cy")
    big = clerk["invoices"].create({"number": "B-1", "title": "Servers", "amount": 25_000})
    small = clerk["invoices"].create({"number": "S-1", "title": "Pens", "amount": 12})
    huge = clerk["invoices"].create({"number": "B-2", "title": "Building", "amount": 90_000})
    started = TriggerService(examples, "test").tick()
    assert sorted(r["record_id"] for r in started) == [big["id"], huge["id"]]  # not the small
    waiting = advance_all(examples, started)
    assert [r["status"] for r in waiting] == ["waiting", "waiting"]
    by_record = {r["record_id"]: r for r in waiting}
    examples.runs.decide(int(by_record[big["id"]]["id"]), "ada", approve=True, comment="ok")
    examples.runs.decide(int(by_record[huge["id"]]["id"]), "ada", approve=False, comment="no")
    assert examples["invoices"].get(big["id"])["status"] == 1  # Accepted for Payment
    assert examples["invoices"].get(huge["id"])["status"] == 2  # Rejected
    assert examples["invoices"].get(small["id"])["status"] == 0
    subjects = sorted(m.message["Subject"] for m in mailbox.mails)
    assert subjects == ["Invoice B-1: accepted", "Invoice B-2: rejected"]
    assert {r for m in mailbox.mails for r in m.recipients} == {"cy@example.org"}
