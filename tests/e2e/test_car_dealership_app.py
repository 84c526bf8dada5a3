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


NEW_VIN = "WVWZZZ1JZXW000777"
TAKEN_VIN = "VF1RFB00012345678"


def open_row(page: Any, vin: str) -> None:
    """Click the "Open" button of the grid row showing ``vin`` (the innermost box holding
    it is the row: its button and its cells)."""
    row = page.locator(".appbook-grid .widget-hbox", has_text=vin).last
    row.get_by_role("button", name="Open").click()


def test_a_car_from_the_dataflow_button_to_a_signed_contract(server: Served, page: Any) -> None:
    bruno = api(server, "POST", "components/managers/records", {"name": "Bruno Petit", "email": "bruno@example.org"})  # fmt: skip
    # A car already in the fleet (with a manager, so off the main grid): its VIN is taken.
    api(server, "POST", "components/cars/records", {"vin": TAKEN_VIN, "brand": "Renault", "model": "Clio", "year": 2018, "price": 9000, "manager": bruno["id"]})  # fmt: skip
    open_app(page, server, "cars")
    page.locator(".appbook-grid").wait_for(timeout=OPEN)
    page.get_by_role("button", name="Add a new car").click()

    # "Add the car" runs the add_car dataflow; a VIN in the fleet and a negative price are
    # refused under their fields and nothing is written.
    vin = page.locator(".appbook-field-vin input")
    vin.wait_for(timeout=OPEN)
    vin.fill(TAKEN_VIN)
    page.locator(".appbook-field-brand input").fill("  Volkswagen ")
    page.locator(".appbook-field-model input").fill("Golf")
    page.locator(".appbook-field-year input").fill("2021")
    page.locator(".appbook-field-colour select").select_option(label="Blue")
    price = page.locator(".appbook-field-price input")
    price.fill("-1")
    price.press("Tab")
    page.get_by_role("button", name="Add the car").click()
    price_error = page.locator(".appbook-field-price .appbook-error")
    price_error.wait_for()
    assert "at least 0" in price_error.inner_text()
    price.fill("21900")
    price.press("Tab")
    price_error.wait_for(state="hidden")
    page.get_by_role("button", name="Add the car").click()
    vin_error = page.locator(".appbook-field-vin .appbook-error")
    vin_error.wait_for()
    assert "already used" in vin_error.inner_text()
    screenshot(page, "cars-add-refused")
    assert api(server, "GET", 'components/cars/records?where={"model":"Golf"}')["items"] == []

    vin.fill(NEW_VIN)
    vin.press("Tab")
    page.get_by_role("button", name="Add the car").click()
    page.get_by_text(f"Added Volkswagen Golf (VIN {NEW_VIN}) to the lot.").wait_for()
    screenshot(page, "cars-added-by-dataflow")
    (car,) = api(server, "GET", f'components/cars/records?where={{"vin":"{NEW_VIN}"}}')["items"]
    assert (car["brand"], car["colour"], car["archived"], car["manager"]) == ("Volkswagen", "blue", False, None)  # fmt: skip

    # Back on the main grid (the static filter: no manager, not archived) the car is there.
    page.get_by_role("button", name="Back").click()
    grid = page.locator(".appbook-grid")
    grid.get_by_text(NEW_VIN).wait_for()
    assert TAKEN_VIN not in grid.inner_text()
    screenshot(page, "cars-lot-with-new-car")

    # Appoint a manager in the modal dialog (appoint_manager: lookup → update).
    open_row(page, NEW_VIN)
    page.get_by_role("button", name="Appoint a manager").click()
    dialog = page.locator(".appbook-dialog")
    dialog.wait_for()
    dialog.locator(".appbook-field-manager select").select_option(label="Bruno Petit")
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")
    assert api(server, "GET", f"components/cars/records/{car['id']}")["manager"] == bruno["id"]
    page.get_by_text("Appointed Bruno Petit.").wait_for()  # shown on the car page, under it

    # Enter into a contract (enter_contract: update, archived) and back to the car.
    page.get_by_role("button", name="Enter into a contract").click()
    number = page.locator(".appbook-field-contract_number input")
    number.wait_for()
    number.fill("C-E2E-0001")
    page.locator(".appbook-field-sold_on input").fill("2026-03-02")
    page.locator(".appbook-field-sold_on input").press("Tab")
    screenshot(page, "cars-contract")
    page.get_by_role("button", name="Sign the contract").click()
    number.wait_for(state="detached")  # signed, then back on the car page
    signed = api(server, "GET", f"components/cars/records/{car['id']}")
    assert (signed["archived"], signed["contract_number"], signed["sold_on"]) == (True, "C-E2E-0001", "2026-03-02")  # fmt: skip
    archived = page.locator(".appbook-field-archived input[type=checkbox]")
    page.wait_for_function("el => el.checked", arg=archived.element_handle())
    page.get_by_text("Contract C-E2E-0001 signed; the car is archived.").wait_for()
    screenshot(page, "cars-signed")

    # The main grid no longer lists it (appointed and archived); "All cars" still does.
    page.get_by_role("button", name="Back").click()
    page.get_by_role("button", name="All cars").wait_for()
    page.wait_for_function(
        "vin => !document.querySelector('.appbook-grid').innerText.includes(vin)", arg=NEW_VIN
    )
    page.get_by_role("button", name="All cars").click()
    page.locator(".appbook-grid").get_by_text(NEW_VIN).wait_for()
    screenshot(page, "cars-fleet-after-contract")
