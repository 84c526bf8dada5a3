"""Pages rendered from the invoice example: grid, navigation, form actions, dialogs."""

from __future__ import annotations

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

    view.current.run(Action(run_workflow="nightly"))
    assert view.current.status.text == "Workflows are not available yet."
