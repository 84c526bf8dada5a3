"""Reference app 2, the car dealership, driven through its pages as a user would.

Each test publishes ``notebooks/examples/car_dealership`` on SQLite and PostgreSQL, opens the
cars app, types into controls, clicks the page's own buttons and checks both what the pages
show and what the database holds.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest

from appbook.kernels.ui.page import AppView, PageView, show
from appbook.server.dataflows.log import runs as dataflow_runs
from appbook.server.engine import Appbook
from appbook.server.errors import ValidationError

EXAMPLES = Path(__file__).parent.parent.parent / "notebooks" / "examples"
DEALERSHIP = EXAMPLES / "car_dealership"

VIN_1 = "1HGCM82633A004352"
VIN_2 = "WVWZZZ1JZXW000001"
VIN_3 = "VF1RFB00012345678"
VIN_4 = "ZFA31200000765432"


@pytest.fixture
def dealership(app: Appbook) -> Appbook:
    """The engine with the car dealership published."""
    app.publish(DEALERSHIP)
    return app


@pytest.fixture
def view(dealership: Appbook) -> Iterator[AppView]:
    """The cars app on its first page, as ``/appbook/apps/cars`` opens it."""
    shell = show("cars", "lot", app=dealership, live=False)
    yield shell
    shell.close()


def buttons(widget: widgets.Widget) -> Iterator[widgets.Button]:
    """Every button under ``widget``, depth first."""
    if isinstance(widget, widgets.Button):
        yield widget
    for child in getattr(widget, "children", ()):
        yield from buttons(child)


def click(page: PageView, text: str) -> None:
    """Click the page's button labelled ``text`` (exactly one must exist)."""
    found = [b for b in buttons(page) if b.description == text]
    assert len(found) == 1, f"{page.name}: {len(found)} buttons {text!r}"
    found[0].click()


def type_into(page: PageView, **values: Any) -> None:
    """Set the inputs of the page's controls as a user would (text for text inputs)."""
    for name, value in values.items():
        page.controls[name].input.value = value


def dialog_shown(view: AppView) -> bool:
    """Whether the shell shows a dialog (its dialog layer is the shell's last child)."""
    layer = view.children[-1]
    return (
        view.dialog is not None and view.dialog in layer.children and layer.layout.display != "none"
    )


def close_dialog(view: AppView) -> None:
    """Click the Close button the shell puts under every dialog."""
    [close] = [b for b in buttons(view.children[-1]) if b.description == "Close"]
    close.click()


def grid_vins(page: PageView) -> list[str]:
    """The VINs the page's only grid shows."""
    assert len(page.grids) == 1
    return [row["vin"] for row in page.grids[0].rows]


def new_car(app: Appbook, vin: str, brand: str, model: str, **more: Any) -> dict[str, Any]:
    """A car stored directly (the data a grid starts from)."""
    values = {"vin": vin, "brand": brand, "model": model, "year": 2020, "price": 15000.0}
    return app["cars"].create({**values, **more})


@pytest.fixture
def anna(dealership: Appbook) -> dict[str, Any]:
    """A transaction specialist."""
    return dealership["managers"].create({"name": "Anna Martin", "email": "anna@cars.example"})


def test_the_examples_publish_together(app: Appbook) -> None:
    # `make run` publishes notebooks/examples as one directory: no component name clashes.
    app.publish(EXAMPLES)
    names = set(app.components())
    assert {"cars", "managers", "invoices", "suppliers"} <= names
    cars = app["cars"].definition
    assert cars.fields["manager"].to == "managers"
    assert next(iter(cars.pages or {})) == "lot"  # the page an app address opens


def test_main_page_lists_only_cars_without_a_manager_and_not_archived(
    dealership: Appbook, anna: dict[str, Any], view: AppView
) -> None:
    new_car(dealership, VIN_1, "Honda", "Accord")
    new_car(dealership, VIN_2, "Volkswagen", "Golf", manager=anna["id"])
    new_car(dealership, VIN_3, "Renault", "Clio", archived=True)
    new_car(dealership, VIN_4, "Fiat", "Panda")
    page = view.current
    page.grids[0].refresh()
    assert page.name == "lot" and page.form is None
    assert page.grids[0].columns == ["vin", "brand", "model", "year", "colour", "price"]
    assert grid_vins(page) == [VIN_4, VIN_1]  # ordered by brand: Fiat, Honda
    # The user's own filters narrow the static filter, never widen it.
    assert page.grids[0].set_filter("brand", "Volkswagen") is True
    assert grid_vins(page) == []
    page.grids[0].clear_filters()
    assert grid_vins(page) == [VIN_4, VIN_1]
    # "All cars" shows the whole fleet, with its manager and archived flag.
    click(page, "All cars")
    fleet = view.current
    assert fleet.name == "fleet"
    assert sorted(grid_vins(fleet)) == sorted([VIN_1, VIN_2, VIN_3, VIN_4])
    click(fleet, "Back")
    assert view.current is page


def test_add_a_new_car_through_the_dataflow(dealership: Appbook, view: AppView) -> None:
    click(view.current, "Add a new car")
    add = view.current
    assert add.name == "add_car" and add.form is not None and add.form.record_id is None
    assert "archived" not in add.controls and "manager" not in add.controls
    assert "Save" not in [b.description for b in buttons(add)]  # the dataflow writes
    type_into(
        add,
        vin=VIN_1,
        brand="  Honda ",
        model="Accord",
        year="2019",
        colour="silver",
        price="18500",
    )
    click(add, "Add the car")  # action_model → normalise (cars.py) → create → respond
    assert add.status.text == f"Added Honda Accord (VIN {VIN_1}) to the lot."
    [car] = dealership["cars"].query(where={"vin": VIN_1})
    assert (car["brand"], car["model"], car["year"], car["colour"]) == (
        "Honda",  # trimmed by the script
        "Accord",
        2019,
        "silver",
    )
    assert car["price"] == 18500.0
    assert car["archived"] is False and car["manager"] is None  # set by the script
    [run] = dataflow_runs(dealership, "cars", "add_car")
    assert run["status"] == "succeeded"
    click(add, "Back")
    assert view.current.name == "lot"
    assert grid_vins(view.current) == [VIN_1]  # the static filter: no manager, not archived


def test_the_dataflows_check_what_the_pages_check_when_called_from_python(
    dealership: Appbook, anna: dict[str, Any]
) -> None:
    # Over REST or from Python no page checks the values first: cars.py does.
    car = new_car(dealership, VIN_1, "Honda", "Accord")
    cars = dealership["cars"]
    with pytest.raises(ValidationError) as refused:
        cars.run_dataflow("enter_contract", {}, record={"id": car["id"], "sold_on": None})
    assert refused.value.errors == {"contract_number": ["is required"], "sold_on": ["is required"]}
    assert "dataflow cars.enter_contract, stage sign, step check" in refused.value.message
    with pytest.raises(ValidationError) as refused:
        cars.run_dataflow("appoint_manager", {}, record={"id": car["id"], "manager": 999})
    assert refused.value.errors == {"manager": ["no managers record with id 999"]}
    with pytest.raises(ValidationError) as refused:
        cars.run_dataflow("appoint_manager", {}, record={"id": car["id"], "manager": None})
    assert refused.value.errors == {"manager": ["is required"]}
    assert cars.get(car["id"])["version"] == car["version"]  # nothing written
    done = cars.run_dataflow("appoint_manager", {}, record={"id": car["id"], "manager": anna["id"]})
    assert done.value == "Appointed Anna Martin."
    signed = cars.run_dataflow(
        "enter_contract",
        {},
        record={"id": car["id"], "contract_number": "C-1", "sold_on": dt.date(2026, 1, 5)},
    )
    assert signed.value == "Contract C-1 signed; the car is archived."
    assert signed.actions == [{"action": "refresh"}]
    stored = cars.get(car["id"])
    assert (stored["manager"], stored["archived"], stored["contract_number"]) == (
        anna["id"],
        True,
        "C-1",
    )


def test_the_add_car_script_normalises_what_people_type(dealership: Appbook) -> None:
    # The same dataflow called from Python: the VIN as read off a windscreen.
    typed = {"vin": "1hgcm 8263-3a004352", "brand": "Honda", "model": "Accord", "year": 2019}
    result = dealership["cars"].run_dataflow(
        "add_car", {}, record={**typed, "price": 100.0, "colour": " Red ", "archived": True}
    )
    [car] = dealership["cars"].query()
    assert (car["vin"], car["colour"], car["archived"]) == (VIN_1, "red", False)
    assert result.value == {
        "message": f"Added Honda Accord (VIN {VIN_1}) to the lot.",
        "id": car["id"],
    }
    assert result.actions == [{"action": "refresh"}]


def test_appoint_a_manager_then_enter_into_a_contract(
    dealership: Appbook, anna: dict[str, Any], view: AppView
) -> None:
    car = new_car(dealership, VIN_1, "Honda", "Accord")
    other = new_car(dealership, VIN_4, "Fiat", "Panda")
    main = view.current
    main.grids[0].refresh()
    assert grid_vins(main) == [VIN_4, VIN_1]

    main.grids[0].click_row(1)
    page = view.current
    assert page.name == "view_car" and page.params == {"id": car["id"]}
    assert page.controls["vin"].value == VIN_1 and page.controls["manager"].value is None
    assert page.controls["manager"].disabled and page.controls["archived"].disabled

    # Appoint a manager: a dialog over the car page (the page stays underneath).
    click(page, "Appoint a manager")
    dialog = view.dialog
    assert dialog is not None and dialog.name == "appoint" and view.current is page
    assert dialog_shown(view)
    assert dialog.form is not None and dialog.form.record_id == car["id"]
    assert dialog.controls["vin"].value == VIN_1 and dialog.controls["vin"].disabled
    picker = dialog.controls["manager"]
    assert ("Anna Martin", anna["id"]) in picker.input.options
    # Save runs appoint_manager: lookup the manager (required) → update the car.
    click(dialog, "Save")  # no manager picked: refused under the picker, nothing written
    assert picker.error == "is required"
    assert dealership["cars"].get(car["id"])["version"] == car["version"]
    assert view.dialog is dialog  # the refused run stopped [run_dataflow, close]: still open
    picker.input.value = anna["id"]
    click(dialog, "Save")  # the dataflow updates the car, then the dialog closes
    # The dialog closed at once: its outcome is shown on the page under it.
    assert (page.status.kind, page.status.text) == ("ok", "Appointed Anna Martin.")
    [appointed] = dataflow_runs(dealership, "cars", "appoint_manager", limit=1)
    assert appointed["status"] == "succeeded" and not appointed["error"]
    stored = dealership["cars"].get(car["id"])
    assert stored["manager"] == anna["id"] and stored["version"] == car["version"] + 1
    assert dealership["cars"].get(other["id"])["manager"] is None
    assert view.dialog is None and not view.children[-1].children
    assert view.children[-1].layout.display == "none"
    assert view.current is page
    assert page.controls["manager"].value == anna["id"]  # the page under it was reloaded
    # The static filter now leaves the appointed car out of the main grid.
    assert grid_vins(main) == [VIN_4]

    # Enter into a contract: a page that archives the car, then back.
    click(page, "Enter into a contract")
    contract = view.current
    assert contract.name == "contract" and contract.form is not None
    assert contract.controls["manager"].value == anna["id"]  # loaded fresh from the database
    assert "archived" not in contract.controls  # the enter_contract dataflow sets it
    click(contract, "Sign the contract")  # the page requires the number and date
    assert contract.controls["contract_number"].error == "is required"
    assert contract.controls["sold_on"].error == "is required"
    assert view.current is contract  # the refused run stopped the list before "back"
    assert contract.form.status.text.startswith("Some values need attention")
    assert dealership["cars"].get(car["id"])["archived"] is False
    type_into(contract, contract_number="C-2026-0001", sold_on=dt.date(2026, 3, 2))
    click(contract, "Sign the contract")
    signed = dealership["cars"].get(car["id"])
    assert signed["archived"] is True
    assert (signed["contract_number"], signed["sold_on"]) == ("C-2026-0001", dt.date(2026, 3, 2))
    assert signed["manager"] == anna["id"]
    assert view.current is page  # signed, then back
    assert page.status.text == "Contract C-2026-0001 signed; the car is archived."
    click(page, "Back")
    assert view.current is main and grid_vins(main) == [VIN_4]
    assert dealership["cars"].count(where={"archived": True}) == 1


def test_validation_errors_show_under_the_controls_and_write_nothing(
    dealership: Appbook, view: AppView
) -> None:
    new_car(dealership, VIN_1, "Honda", "Accord")
    click(view.current, "Add a new car")
    add = view.current
    assert add.form is not None
    # Year out of range: the engine's own rule, shown under the year at once and on Save.
    type_into(add, vin=VIN_2, brand="Volkswagen", model="Golf", year="1890", price="9000")
    assert add.controls["year"].error == "must be at least 1950"
    click(add, "Add the car")
    assert add.controls["year"].error == "must be at least 1950"
    assert add.form.status.text.startswith("Some values need attention")  # checked, not run
    assert dataflow_runs(dealership, "cars", "add_car") == []
    type_into(add, year="2041")
    click(add, "Add the car")
    assert add.controls["year"].error == "must be at most 2035"
    assert dealership["cars"].count() == 1
    # A malformed VIN and a negative price.
    type_into(add, year="2018", vin="1HGCM82633A00435O", price="-1")
    click(add, "Add the car")
    assert add.controls["vin"].error.startswith("does not match the pattern")
    assert add.controls["price"].error == "must be at least 0"
    type_into(add, vin="SHORT")
    assert add.controls["vin"].error == "must be at least 17 characters"
    assert dealership["cars"].count() == 1
    # A VIN already in the fleet: the engine refuses the dataflow's create, the message
    # goes under the VIN and the run's transaction writes nothing.
    type_into(add, vin=VIN_1, price="9000")
    click(add, "Add the car")
    assert add.controls["vin"].error == "this value is already used by another record"
    assert add.status.text.startswith("That did not work: dataflow cars.add_car, stage save")
    assert add.controls["year"].error == "" and add.controls["price"].error == ""
    assert add.form.record_id is None
    [only] = dealership["cars"].query()
    assert (only["vin"], only["brand"]) == (VIN_1, "Honda")
    # Fixed, it saves.
    type_into(add, vin=VIN_2)
    click(add, "Add the car")
    assert add.controls["vin"].error == "" and dealership["cars"].count() == 2
    assert add.form.status.text == ""  # the earlier "need attention" is gone
    assert add.status.text == f"Added Volkswagen Golf (VIN {VIN_2}) to the lot."


def test_managers_pages(dealership: Appbook, view: AppView) -> None:
    # The managers pages declare `roles: [managers]` (tests/kernels/test_page_roles.py
    # checks that others are refused); the app acts as 'tester', a manager here.
    dealership.users.add("tester", roles=["managers"])
    click(view.current, "Managers")
    grid_page = view.current
    assert (grid_page.component, grid_page.name) == ("managers", "all")
    assert grid_page.grids[0].rows == []
    click(grid_page, "Add a manager")
    edit = view.current
    assert edit.component == "managers" and edit.name == "edit"
    type_into(edit, name="Bruno Petit", email="not an email", phone="+33 1 23 45 67 89")
    click(edit, "Save")
    assert "not a valid email address" in edit.controls["email"].error
    assert dealership["managers"].count() == 0
    type_into(edit, email="bruno@cars.example")
    click(edit, "Save")
    [bruno] = dealership["managers"].query()
    assert (bruno["name"], bruno["phone"]) == ("Bruno Petit", "+33 1 23 45 67 89")
    click(edit, "Back")
    assert view.current is grid_page
    assert [r["name"] for r in grid_page.grids[0].rows] == ["Bruno Petit"]
    grid_page.grids[0].click_row(0)
    assert view.current.name == "edit" and view.current.controls["email"].value == (
        "bruno@cars.example"
    )
    click(view.current, "Back")
    click(grid_page, "Back")  # back into the cars app
    assert (view.current.component, view.current.name) == ("cars", "lot")
    # The new manager is offered when appointing one.
    car = new_car(dealership, VIN_1, "Honda", "Accord")
    page = view.open_page("cars", "view_car", {"id": car["id"]})
    click(page, "Appoint a manager")
    assert view.dialog is not None
    assert ("Bruno Petit", bruno["id"]) in view.dialog.controls["manager"].input.options
    view.close_dialog()
    # A second manager with Bruno's e-mail: the unique field refuses the save, the message
    # reads plainly under the field and the status line names it.
    second = view.open_page("managers", "edit", {})
    type_into(second, name="Other", email="bruno@cars.example", phone="+33 1 23 45 67 80")
    click(second, "Save")
    assert second.controls["email"].error == "this value is already used by another record"
    assert second.form is not None
    assert second.form.status.text == (
        "Not saved: managers.email: this value is already used by another record"
    )
    assert dealership["managers"].count() == 1


def test_served_app_is_live_the_car_page_follows_the_dialog(
    dealership: Appbook, anna: dict[str, Any]
) -> None:
    # Served apps run live: the car page under the dialog reloads itself once the dialog
    # saved, so editing the car next does not run into a stale version.
    car = new_car(dealership, VIN_1, "Honda", "Accord")
    shell = show("cars", "view_car", app=dealership, id=car["id"])
    try:
        page = shell.current
        click(page, "Appoint a manager")
        assert shell.dialog is not None
        shell.dialog.controls["manager"].input.value = anna["id"]
        click(shell.dialog, "Save")
        assert shell.dialog is None
        deadline = time.monotonic() + 5
        while page.controls["manager"].value != anna["id"] and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the page's state against a deadline
        assert page.controls["manager"].value == anna["id"]
        type_into(page, notes="Winter tyres included.")
        click(page, "Save")
        assert page.form is not None and page.form.status.text == "Saved."
        stored = dealership["cars"].get(car["id"])
        assert (stored["manager"], stored["notes"]) == (anna["id"], "Winter tyres included.")
    finally:
        shell.close()


def test_a_dataflow_that_opens_a_page_says_its_outcome_there(app: Appbook, tmp_path: Path) -> None:
    # add_car ending with open_page on the new car instead of refresh: the car page opens
    # over the add page, and the respond message is shown where the user now looks.
    folder = tmp_path / "dealership"
    shutil.copytree(DEALERSHIP, folder)
    yaml = folder / "cars.component.yaml"
    opens = (
        "{name: show, source: save, form_action: "
        '{action: open_page, page: view_car, params: {id: "item.id"}}}'
    )
    text = yaml.read_text()
    assert text.count("{name: show, form_action: {action: refresh}}") == 1
    yaml.write_text(text.replace("{name: show, form_action: {action: refresh}}", opens))
    app.publish(folder)
    shell = show("cars", "lot", app=app, live=False)
    try:
        click(shell.current, "Add a new car")
        type_into(shell.current, vin=VIN_2, brand="Volkswagen", model="Golf", year="2021")
        type_into(shell.current, price="21900")
        click(shell.current, "Add the car")
        car_page = shell.current
        assert car_page.name == "view_car" and car_page.controls["vin"].value == VIN_2
        assert car_page.status.text == f"Added Volkswagen Golf (VIN {VIN_2}) to the lot."
    finally:
        shell.close()
