"""Pages rendered from the invoice example: grid, navigation, form actions, dialogs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from appbook.kernels.ui.page import AppView, show
from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.errors import NotFound

EXAMPLES = Path(__file__).parent.parent.parent / "notebooks" / "examples"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Appbook]:
    engine = Appbook(
        EngineConfig.from_values(
            home=str(tmp_path / "home"), database_url=f"sqlite:///{tmp_path}/a.db", redis_url=""
        ),
        actor="clerk",
    )
    engine.publish(EXAMPLES)
    yield engine
    engine.close()


@pytest.fixture
def view(app: Appbook) -> Iterator[AppView]:
    shell = show("invoices", "all", app=app, live=False)
    yield shell
    shell.close()


def test_all_page_has_the_grid_and_add_button(view: AppView) -> None:
    page = view.current
    assert page.name == "all" and len(page.grids) == 1
    assert page.grids[0].columns[:2] == ["number", "title"]
    assert page.form is None


def test_add_save_and_see_it_in_the_grid(app: Appbook, view: AppView) -> None:
    view.current.run(view.current.page.layout[1].button.action)  # "Add invoice"
    edit = view.current
    assert edit.name == "edit" and edit.form is not None and edit.form.record_id is None
    edit.controls["number"].input.value = "INV-9"
    edit.controls["title"].input.value = "Paper"
    edit.controls["amount"].input.value = "-5"
    edit.run("save")
    assert edit.controls["amount"].error == "must be at least 0"
    assert app["invoices"].count() == 0
    edit.controls["amount"].input.value = "15"
    edit.run("save")
    assert app["invoices"].count() == 1 and edit.form.record_id is not None
    edit.run("back")
    assert view.current.name == "all"
    assert [r["number"] for r in view.current.grids[0].rows] == ["INV-9"]


def test_row_click_opens_the_record(app: Appbook, view: AppView) -> None:
    rec = app["invoices"].create({"number": "INV-1", "title": "Paper", "amount": 3})
    view.current.grids[0].refresh()
    view.current.grids[0].click_row(0)
    edit = view.current
    assert edit.name == "edit" and edit.params == {"id": rec["id"]}
    assert edit.controls["title"].value == "Paper"
    edit.run("delete")
    assert app["invoices"].count() == 0 and view.current.name == "all"


def test_unknown_page_and_unavailable_actions(app: Appbook, view: AppView) -> None:
    with pytest.raises(NotFound, match="has no page 'nope'"):
        show("invoices", "nope", app=app, live=False)
    from appbook.server.definitions.pages import Action

    view.current.run(Action(run_dataflow="nightly"))
    assert "no dataflow 'nightly'" in view.current.status.text  # said, not raised
    view.current.run(Action(run_workflow="nightly"))  # no such workflow: said, not raised
    assert "has no workflow 'nightly'" in view.current.status.text


def test_action_lists_stop_at_a_refused_save_and_set_fills_fields(
    app: Appbook, view: AppView
) -> None:
    from appbook.server.definitions.pages import Action

    view.current.run(view.current.page.layout[1].button.action)  # "Add invoice"
    edit = view.current
    edit.controls["number"].input.value = "INV-7"
    edit.run(["save", "back"])  # no title: refused, so no "back" either
    assert edit.controls["title"].error and view.current is edit
    assert app["invoices"].count() == 0
    edit.controls["title"].input.value = "Toner"
    supplier = app["suppliers"].create({"name": "Acme", "email": "a@acme.example"})
    edit.run([Action(set={"status": 3, "supplier": supplier["id"]}), "save", "back"])
    assert view.current.name == "all"
    (saved,) = app["invoices"].query()
    assert (saved["number"], saved["status"], saved["supplier"]) == ("INV-7", 3, supplier["id"])
    assert [r["number"] for r in view.current.grids[0].rows] == ["INV-7"]


def test_save_then_back_goes_back_when_nothing_changed(app: Appbook, view: AppView) -> None:
    app["invoices"].create({"number": "INV-1", "title": "Paper"})
    view.current.grids[0].refresh()
    view.current.grids[0].click_row(0)
    view.current.run(["save", "back"])
    assert view.current.name == "all"


def test_dialog_is_modal_and_refreshes_the_page_under_it(app: Appbook, view: AppView) -> None:
    rec = app["invoices"].create({"number": "INV-1", "title": "Paper"})
    view.current.grids[0].refresh()
    view.current.grids[0].click_row(0)
    under = view.current
    dialog = view.open_page("invoices", "edit", {"id": rec["id"]}, dialog=True)
    assert view._backdrop.layout.display == "" and view._dialog_box.layout.display == ""
    dialog.controls["title"].input.value = "Paper, A4"
    dialog.run(["save", "close"])
    assert view.dialog is None and view._backdrop.layout.display == "none"
    # live=False here: the page under the dialog was reloaded, so its next save is not stale
    assert under.controls["title"].value == "Paper, A4" and under.form is not None
    under.controls["amount"].input.value = "9"
    under.run("save")
    assert app["invoices"].get(rec["id"])["amount"] == 9 and under.form.record_id == rec["id"]


def test_a_dialog_page_opened_first_is_a_page(app: Appbook) -> None:
    spec = app["invoices"].definition.model_dump(mode="json")
    for page in spec["pages"]:
        if page["name"] == "edit":
            page["dialog"] = True
    others = {
        f"{n}.yaml": json.dumps(c.definition.model_dump(mode="json"))
        for n, c in app.registry.all().items()
        if n != "invoices"
    }
    app.publish_texts({"invoices.yaml": json.dumps(spec), **others})
    shell = show("invoices", "edit", app=app, live=False)
    try:
        assert shell.current.name == "edit" and shell.dialog is None
    finally:
        shell.close()
