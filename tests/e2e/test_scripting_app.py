"""Reference app 3 (scripting) in a real browser: the page's script sets defaults, hides and
disables controls, puts an error under a field as the user types, refuses the save, opens a
dialog, and logs to the maker's Log panel and the server log."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from appbook.server.engine import default_actor
from tests.e2e.conftest import TOKEN, screenshot
from tests.e2e.test_invoices_app import api
from tests.serving import Served

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
# ms: a deadline, not a measure. Every example app's kernel is preheated at start-up, and on
# a loaded two-core machine the first page can take minutes to become interactive.
OPEN = 180_000


def field(page: Any, name: str, element: str = "input") -> Any:
    return page.locator(f".appbook-field-{name} {element}").first


def claims(server: Served) -> list[dict[str, Any]]:
    return list(api(server, "GET", "components/expenses/records")["items"])


def test_a_scripted_expense_claim(server: Served, page: Any) -> None:
    page.goto(f"{server.url}/appbook/apps/expenses?token={TOKEN}")
    page.get_by_role("button", name="New claim").click(timeout=OPEN)
    title = field(page, "title")
    title.wait_for(timeout=OPEN)
    # on_load: defaults on a new record
    assert field(page, "spent_on").input_value() == dt.date.today().isoformat()
    assert field(page, "currency", "select").input_value() == "EUR"
    assert field(page, "submitted_by").input_value() == default_actor()  # the token's owner
    # hidden and disabled until the values call for them
    assert not page.locator(".appbook-field-nights").is_visible()
    assert field(page, "receipt_number").is_disabled()
    assert not page.get_by_role("button", name="Approve…").is_visible()

    title.fill("Dinner with a client")
    title.press("Tab")
    field(page, "category", "select").select_option(label="Travel")
    page.locator(".appbook-field-nights").wait_for()  # shown for travel
    field(page, "category", "select").select_option(label="Meals")
    page.locator(".appbook-field-nights").wait_for(state="hidden")
    amount = field(page, "amount")
    amount.fill("250")
    amount.press("Tab")
    error = page.locator(".appbook-field-amount .appbook-error")
    error.wait_for()
    assert error.inner_text() == "meals claims are limited to 200"
    receipt = field(page, "receipt_number")
    page.wait_for_function("el => !el.disabled", arg=receipt.element_handle())
    receipt.fill("R-77")
    receipt.press("Tab")
    screenshot(page, "scripting-error-under-field")

    page.get_by_role("button", name="Save").click()  # refused by before_save
    page.get_by_text("Not saved: see the messages under the fields.").wait_for()
    assert claims(server) == [] and error.is_visible()

    amount.fill("120")
    amount.press("Tab")
    error.wait_for(state="hidden")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    (claim,) = claims(server)
    assert (claim["amount"], claim["receipt_number"], claim["status"]) == (120, "R-77", "draft")

    # call: approve → a modal dialog over the claim
    page.get_by_role("button", name="Approve…").click()
    dialog = page.locator(".appbook-dialog")
    dialog.wait_for()
    approver = dialog.locator(".appbook-field-approved_by input")
    approver.fill("Grace")
    approver.press("Tab")
    screenshot(page, "scripting-approve-dialog")
    dialog.get_by_role("button", name="Approve", exact=True).click()
    dialog.wait_for(state="hidden")
    stored = api(server, "GET", f"components/expenses/records/{claim['id']}")
    assert (stored["status"], stored["approved_by"]) == ("approved", "Grace")
    # on_close refreshed the claim under the dialog; approved claims cannot be approved again
    status = field(page, "status", "select")
    page.wait_for_function("el => el.value === 'Approved'", arg=status.element_handle())
    page.get_by_role("button", name="Approve…").wait_for(state="hidden")

    # The owner is a maker: the Log panel shows what the script logged.
    page.get_by_role("button", name="Log (").click()
    log = page.locator(".appbook-log-body")
    log.get_by_text(f"claim {claim['id']} approved by {default_actor()}").wait_for()
    screenshot(page, "scripting-after-approve")
    assert f"claim {claim['id']} approved by" in server.log.read_text()
