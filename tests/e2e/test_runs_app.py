"""The Runs app in a real browser: an invoice over 10,000 started its approval workflow (a
record trigger of the served server); a manager opens the Runs app, opens the run and
approves it; the executor carries the run on and the invoice is accepted."""

from __future__ import annotations

import time
from typing import Any

import pytest

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from tests.e2e.conftest import TOKEN, screenshot
from tests.e2e.test_invoices_app import OPEN, api
from tests.serving import Served

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def until(check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s")


def test_a_manager_approves_a_big_invoice_in_the_runs_app(server: Served, page: Any) -> None:
    with Appbook(EngineConfig.from_values(home=server.env["APPBOOK_HOME"])) as app:
        owner = app.actor  # token holders act as the server's owner
        if owner not in {u.name for u in app.users.all()}:
            app.users.add(owner, roles=["managers"])
    invoice = api(server, "POST", "components/invoices/records", {"number": "BIG-1", "title": "Servers", "amount": 42_000})  # fmt: skip

    def waiting() -> Any:
        runs = api(server, "GET", f"runs?workflow=big_invoice&record_id={invoice['id']}")
        return next((r for r in runs["items"] if r["status"] == "waiting"), None)

    run = until(waiting)
    page.goto(f"{server.url}/appbook/apps/_runs?token={TOKEN}")
    view = page.locator(".appbook-runs")
    view.wait_for(timeout=OPEN)
    # A row of the table: an Open button beside the run's cells (the filters' options
    # also name workflows and statuses).
    opens = page.get_by_role("button", name="Open")
    row = view.locator(".widget-hbox", has=opens).filter(has_text="big_invoice").first
    row.filter(has_text="waiting").wait_for(timeout=OPEN)
    row.get_by_role("button", name="Open").click()
    approve = view.get_by_role("button", name="Approve")
    approve.wait_for(timeout=OPEN)
    screenshot(page, "runs-approval")
    approve.click()

    def decided() -> Any:
        done = api(server, "GET", f"runs/{run['id']}")
        return done if done["status"] in ("succeeded", "failed") else None

    done = until(decided)
    assert done["status"] == "succeeded", done["error"]
    assert api(server, "GET", f"components/invoices/records/{invoice['id']}")["status"] == 1
    row.filter(has_text="succeeded").wait_for(timeout=OPEN)  # the view follows
    screenshot(page, "runs-after-approval")
