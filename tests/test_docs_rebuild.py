"""Reference apps 2 and 3 rebuilt from the docs alone, then used through their widgets.

``tests/test_docs.py`` checks that the docs' YAML equals the examples' and that their Python
names the examples' functions; this file checks that what a maker assembles from the pages
works: the car dealership from ``docs/dataflows.md`` (the managers component, the header the
prose gives, the fields and pages excerpt, the three dataflows and the walk-through's
``cars.py``), the expense claims from ``docs/scripts.md`` (the component and the
walk-through's ``expenses.py``, whose bodies no other test runs), the first example's
``orders`` and its "Bill it" button, the "Try it from Python" block, and the rule that a
publication is the whole folder. Each runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from appbook.kernels.ui.page import AppView, show
from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.errors import DestructiveChange
from tests.kernels.test_car_dealership import click as press
from tests.kernels.test_car_dealership import type_into

ROOT = Path(__file__).parents[1]
DATAFLOWS_MD = ROOT / "docs" / "dataflows.md"
SCRIPTS_MD = ROOT / "docs" / "scripts.md"
VIN = "1HGCM82633A004352"


# -- reading the docs as a maker does ----------------------------------------------------
def fenced(path: Path, after: str = "") -> list[tuple[str, str]]:
    """The ``(language, text)`` of each fenced block of ``path`` below the heading ``after``."""
    text = path.read_text(encoding="utf-8")
    if after:
        text = text[text.index(f"\n{after}\n") :]
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)


def load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def dump(data: Any, path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        YAML().dump(data, out)


def dealership_from_the_docs(folder: Path) -> Path:
    """``docs/dataflows.md``'s walk-through written out as its prose says: both components
    in one folder, ``cars`` from its header, its fields and pages and its three dataflows,
    and ``cars.py`` beside it."""
    walk = "## Walk-through: the car dealership's dataflows"
    found = fenced(DATAFLOWS_MD, walk)
    yaml = [load(text) for lang, text in found if lang == "yaml"]
    [managers] = [d for d in yaml if d.get("name") == "managers"]
    prose = DATAFLOWS_MD.read_text(encoding="utf-8").split(walk)[1]
    header = re.search(r"starts with `name: (\w+)` and `title: ([^`]+)`", prose)
    assert header is not None, "the walk-through no longer says how cars.component.yaml starts"
    cars: dict[str, Any] = {"name": header[1], "title": header[2]}
    for part in (d for d in yaml if "name" not in d):
        for section, entries in part.items():
            cars.setdefault(section, {}).update(entries)
    assert set(cars["dataflows"]) == {"add_car", "appoint_manager", "enter_contract"}
    [script] = [t for lang, t in found if lang == "python" and t.startswith("# cars.py\n")]
    folder.mkdir()
    dump(managers, folder / "managers.component.yaml")
    dump(cars, folder / "cars.component.yaml")
    (folder / "cars.py").write_text(script, encoding="utf-8")
    return folder


def expenses_from_the_docs(folder: Path) -> Path:
    """``docs/scripts.md``'s walk-through: the component and the whole ``expenses.py``."""
    found = fenced(SCRIPTS_MD, "## Walk-through: rebuilding reference app 3")
    [component] = [t for lang, t in found if lang == "yaml" and "name: expenses" in t]
    [script] = [t for lang, t in found if lang == "python" and t.startswith("# expenses.py\n")]
    folder.mkdir()
    (folder / "expenses.component.yaml").write_text(component, encoding="utf-8")
    (folder / "expenses.py").write_text(script, encoding="utf-8")
    return folder


def orders_from_the_docs(folder: Path) -> Path:
    """``docs/dataflows.md``'s first example, the ``orders`` component."""
    [(_, component)] = fenced(DATAFLOWS_MD, "## A first dataflow")[:1]
    assert load(component)["name"] == "orders"
    folder.mkdir()
    (folder / "orders.component.yaml").write_text(component, encoding="utf-8")
    return folder


# -- using the pages as a user does -------------------------------------------------------
@pytest.fixture
def shells() -> Iterator[list[AppView]]:
    """Shells opened by a test, closed after it."""
    opened: list[AppView] = []
    yield opened
    for shell in opened:
        shell.close()


def open_app(
    shells: list[AppView], app: Appbook, component: str, page: str, **params: Any
) -> AppView:
    shell = show(component, page, app=app, live=False, **params)
    shells.append(shell)
    return shell


# -- reference app 2 ----------------------------------------------------------------------
def test_the_dealership_from_dataflows_md_works_through_its_pages(
    app: Appbook, tmp_path: Path, shells: list[AppView]
) -> None:
    app.publish(dealership_from_the_docs(tmp_path / "dealership"))
    grace = app["managers"].create({"name": "Grace Hopper", "email": "grace@dealership.example"})
    bob = app.as_user("bob")  # not a maker, no role
    shell = open_app(shells, bob, "cars", "lot")
    lot = shell.current
    assert lot.grids[0].rows == []

    press(lot, "Add a new car")  # the page's form → add_car: action_model → script → create
    add = shell.current
    type_into(add, vin=VIN, brand="  Honda ", model="Accord", year="2019", price="-5")
    assert add.controls["price"].error == "must be at least 0"  # at once, under the field
    press(add, "Add the car")
    assert app["cars"].count() == 0  # checked as a save would: not run
    type_into(add, price="18500")
    press(add, "Add the car")
    assert add.status.text == f"Added Honda Accord (VIN {VIN}) to the lot."
    [car] = app["cars"].query()
    assert (car["brand"], car["manager"], car["archived"], car["created_by"]) == (
        "Honda",
        None,
        False,
        "bob",
    )
    press(add, "Add the car")  # the values stay on the page: a second car, the same VIN
    assert add.controls["vin"].error == "this value is already used by another record"
    assert app["cars"].count() == 1

    press(add, "Back")
    assert shell.current is lot and [r["vin"] for r in lot.grids[0].rows] == [VIN]
    lot.grids[0].click_row(0)
    car_page = shell.current
    assert car_page.name == "view_car" and car_page.controls["vin"].value == VIN

    press(car_page, "Appoint a manager")  # a dialog: appoint_manager = lookup → update
    dialog = shell.dialog
    assert dialog is not None and shell.current is car_page
    press(dialog, "Save")
    assert dialog.controls["manager"].error == "is required" and shell.dialog is dialog
    dialog.controls["manager"].input.value = grace["id"]
    press(dialog, "Save")
    assert shell.dialog is None
    assert car_page.status.text == "Appointed Grace Hopper."
    assert app["cars"].get(car["id"])["manager"] == grace["id"]

    press(car_page, "Enter into a contract")
    contract = shell.current
    type_into(contract, contract_number="C-1", sold_on=dt.date(2026, 3, 2))
    press(contract, "Sign the contract")  # enter_contract archives the car, then back
    assert shell.current is car_page
    assert car_page.status.text == "Contract C-1 signed; the car is archived."
    stored = app["cars"].get(car["id"])
    assert (stored["archived"], stored["contract_number"]) == (True, "C-1")
    press(car_page, "Back")
    assert shell.current is lot and lot.grids[0].rows == []

    press(lot, "Managers")  # roles: [managers]
    assert shell.current is lot
    assert lot.status.text == "You need the role managers to open Transaction specialists."
    app.users.add("mona", roles=["managers"])
    theirs = open_app(shells, app.as_user("mona"), "cars", "lot")
    press(theirs.current, "Managers")
    managers = theirs.current
    assert (managers.component, managers.name) == ("managers", "all")
    assert [r["name"] for r in managers.grids[0].rows] == ["Grace Hopper"]
    refused = open_app(shells, bob, "managers", "all")
    assert refused.refused == "You need the role managers to open Transaction specialists"
    assert refused.stack == []


# -- reference app 3 ----------------------------------------------------------------------
def test_the_claims_from_scripts_md_work_through_their_pages(
    app: Appbook, tmp_path: Path, shells: list[AppView]
) -> None:
    app.publish(expenses_from_the_docs(tmp_path / "scripting"))
    shell = open_app(shells, app.as_user("ada"), "expenses", "all")
    press(shell.current, "New claim")
    edit = shell.current
    c = edit.controls
    # on_load: defaults on a new record; arrange: hidden, greyed out
    assert (c["spent_on"].value, c["currency"].value, c["submitted_by"].value) == (
        dt.date.today(),
        "EUR",
        "ada",
    )
    assert not c["nights"].visible and c["receipt_number"].input.disabled
    assert edit.named["approve"].layout.display == "none"
    type_into(edit, title="Lunch with a client", category="travel")
    assert c["nights"].visible
    type_into(edit, category="meals", amount="250")  # on_change: check → under the field
    assert c["amount"].error == "meals claims are limited to 200" and not c["nights"].visible
    assert not c["receipt_number"].input.disabled and c["receipt_number"].required
    type_into(edit, receipt_number="R-1")
    press(edit, "Save")  # before_save: the error stands, nothing written
    assert app["expenses"].count() == 0
    type_into(edit, amount="120")
    assert c["amount"].error == ""
    press(edit, "Save")
    [claim] = app["expenses"].query()
    assert (claim["amount"], claim["submitted_by"], claim["status"]) == (120, "ada", "draft")
    assert edit.named["approve"].layout.display == ""  # after_save → arrange

    press(edit, "Approve…")  # call: approve → context.dialog(...)
    dialog = shell.dialog
    assert dialog is not None and dialog.name == "approve"
    press(dialog, "Approve")
    assert shell.dialog is dialog and dialog.controls["approved_by"].error == "is required"
    type_into(dialog, approved_by="Grace")
    press(dialog, "Approve")  # [{call: mark_approved}, save, close]
    assert shell.dialog is None
    assert app["expenses"].get(claim["id"])["status"] == "approved"
    assert c["status"].value == "approved"  # on_close → refresh
    assert edit.named["approve"].layout.display == "none"


# -- dataflows.md's first example and its Python block ------------------------------------
def test_the_first_example_bills_an_order_from_its_button(
    app: Appbook, tmp_path: Path, shells: list[AppView]
) -> None:
    app.publish(orders_from_the_docs(tmp_path / "orders"))
    orders = app["orders"]
    order = orders.create({"customer": "Ada", "amount": 10})
    shell = open_app(shells, app, "orders", "edit", id=order["id"])
    page = shell.current
    press(page, "Bill it")  # params: {rate: 0.2} are the run's inputs
    assert page.status.text == "Billed Ada: 12.0"
    stored = orders.get(order["id"])
    assert (stored["status"], stored["billed"]) == ("billed", 12.0)
    assert page.form is not None and page.form.version == stored["version"]  # shown as stored

    for customer, amount in (("Bo", 100), ("Cy", 5)):
        orders.create({"customer": customer, "amount": amount})
    result = orders.run_dataflow("bill_all", {"rate": 0.2})
    assert result.value == 2  # only the open ones
    assert sorted(o["billed"] for o in orders.query()) == [6.0, 12.0, 120.0]


def test_the_try_it_from_python_block_runs(
    app: Appbook, config: EngineConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app.publish(dealership_from_the_docs(tmp_path / "dealership"))
    # appbook.connect() in the block reaches this test's database, nothing else
    monkeypatch.setenv("APPBOOK_DATABASE_URL", config.database_url)
    monkeypatch.setenv("APPBOOK_HOME", config.home)
    monkeypatch.setenv("APPBOOK_REDIS_URL", "")
    [block] = [t for lang, t in fenced(DATAFLOWS_MD, "### Try it from Python") if lang][:1]
    names: dict[str, Any] = {}
    exec(compile(block, "dataflows.md: Try it from Python", "exec"), names)
    try:
        add = names["add"]
        assert names["page"].name == "lot" and add.name == "add_car"
        assert add.controls["price"].error == "must be at least 0"
        assert names["shell"].refused is None and add.named == {}
    finally:
        names["shell"].close()


def test_a_publication_is_the_whole_folder(app: Appbook, tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    apps.mkdir()
    dealership_from_the_docs(apps / "dealership")
    expenses_from_the_docs(apps / "scripting")
    app.publish(apps)
    assert {"cars", "managers", "expenses"} <= set(app.components())
    app["managers"].create({"name": "Grace Hopper", "email": "grace@dealership.example"})
    with pytest.raises(DestructiveChange) as refused:
        app.publish(apps / "scripting")  # the dealership is not under it: it would go
    assert "component 'managers' was removed: its 1 records would be dropped" in str(refused.value)
    assert app["managers"].count() == 1
