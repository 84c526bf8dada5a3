"""The car dealership app in a real browser: the modal "Appoint a manager" dialog."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.test_invoices_app import OPEN, api, open_app
from tests.serving import Served

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
VIN = "1HGCM82633A004352"


def test_appoint_a_manager_in_a_modal_dialog(server: Served, page: Any) -> None:
    anna = api(server, "POST", "components/managers/records", {"name": "Anna Martin", "email": "anna@example.org"})  # fmt: skip
    car = api(server, "POST", "components/cars/records", {"vin": VIN, "brand": "Honda", "model": "Accord", "year": 2021, "price": 18500})  # fmt: skip
    open_app(page, server, "cars")
    grid = page.locator(".appbook-grid")
    grid.get_by_text(VIN).wait_for(timeout=OPEN)
    grid.get_by_role("button", name="Open").first.click()
    page.get_by_role("button", name="Appoint a manager").click()
    dialog = page.locator(".appbook-dialog")
    dialog.wait_for()
    assert page.locator(".appbook-backdrop").is_visible()  # the page behind is covered
    dialog.locator(".appbook-field-manager select").select_option(label="Anna Martin")
    screenshot(page, "cars-appoint-dialog")
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")  # [save, close]
    assert not page.locator(".appbook-backdrop").is_visible()
    assert api(server, "GET", f"components/cars/records/{car['id']}")["manager"] == anna["id"]
    # The car page under the dialog shows the appointed manager without a reload.
    manager = page.locator(".appbook-field-manager select").first
    page.wait_for_function("el => el.value === 'Anna Martin'", arg=manager.element_handle())
    screenshot(page, "cars-after-appoint")
