"""Forms against a real database: create, edit, errors under controls, conflicts, live."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appbook.kernels.ui.base import FieldControl
from appbook.kernels.ui.form import RecordForm
from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook

EXAMPLES = Path(__file__).parent.parent.parent / "notebooks" / "examples"


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Appbook]:
    engine = Appbook(
        EngineConfig.from_values(
            home=str(tmp_path / "home"), database_url=database_url, redis_url=""
        ),
        actor="clerk",
    )
    engine.publish(EXAMPLES)
    yield engine
    engine.close()


def make_form(app: Appbook, live: bool = False) -> RecordForm:
    definition = app["invoices"].definition
    controls = {
        name: FieldControl(definition.fields[name], name=name)
        for name in ("number", "title", "amount")
    }
    return RecordForm(app, "invoices", controls, live=live)


def test_create_shows_client_and_engine_errors_and_keeps_input(app: Appbook) -> None:
    form = make_form(app)
    form.controls["number"].input.value = "X"
    form.controls["amount"].input.value = "-5"
    assert form.save() is None
    assert form.controls["amount"].error == "must be at least 0"  # the engine's own rule
    assert form.controls["number"].error == "must be at least 2 characters"
    assert form.controls["title"].error == "is required"
    assert form.controls["amount"].input.value == "-5"  # nothing typed is lost
    assert app["invoices"].count() == 0
    form.controls["number"].input.value = "INV-1"
    form.controls["title"].input.value = "Paper"
    form.controls["amount"].input.value = "12.5"
    record = form.save()
    assert record is not None and record["amount"] == 12.5 and form.record_id == record["id"]
    assert form.status.kind == "ok"


def test_duplicate_number_shows_under_the_field(app: Appbook) -> None:
    app["invoices"].create({"number": "INV-1", "title": "First"})
    form = make_form(app)
    form.controls["number"].input.value = "INV-1"
    form.controls["title"].input.value = "Second"
    assert form.save() is None
    assert "already used" in form.controls["number"].error


def test_edit_sends_only_changes_with_the_version(app: Appbook) -> None:
    rec = app["invoices"].create({"number": "INV-2", "title": "Paper", "amount": 1})
    form = make_form(app)
    assert form.load(rec["id"])
    assert form.controls["title"].input.value == "Paper" and not form.dirty
    form.controls["amount"].input.value = "2"
    assert form.dirty and form.changes() == {"amount": 2.0}
    saved = form.save()
    assert saved is not None and saved["version"] == 2 and saved["title"] == "Paper"


def test_conflict_keeps_edits_and_offers_reload(app: Appbook) -> None:
    rec = app["invoices"].create({"number": "INV-3", "title": "Paper", "amount": 1})
    form = make_form(app)
    form.load(rec["id"])
    app.as_user("colleague")["invoices"].update(rec["id"], {"amount": 99})
    form.controls["amount"].input.value = "3"
    assert form.save() is None
    assert (
        form.changed_elsewhere and form.status.kind == "warning" and "colleague" in form.status.text
    )
    assert form.controls["amount"].input.value == "3"
    assert form.reload_button.layout.display == ""
    form.reload()
    assert form.controls["amount"].value == 99


def test_delete(app: Appbook) -> None:
    rec = app["invoices"].create({"number": "INV-4", "title": "Paper"})
    form = make_form(app)
    form.load(rec["id"])
    assert form.delete()
    assert app["invoices"].count() == 0 and form.record_id is None


def test_live_form_reloads_when_untouched_and_warns_when_edited(app: Appbook) -> None:
    rec = app["invoices"].create({"number": "INV-5", "title": "Paper", "amount": 1})
    form = make_form(app, live=True)
    try:
        form.load(rec["id"])
        app.as_user("colleague")["invoices"].update(rec["id"], {"amount": 7})
        deadline = time.monotonic() + 5
        while form.controls["amount"].value != 7 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the form's state against a deadline
        assert form.controls["amount"].value == 7
        form.controls["title"].input.value = "Edited here"
        app.as_user("colleague")["invoices"].update(rec["id"], {"amount": 8})
        deadline = time.monotonic() + 5
        while not form.changed_elsewhere and time.monotonic() < deadline:
            time.sleep(0.05)
        assert form.changed_elsewhere and form.controls["title"].input.value == "Edited here"
        assert form.controls["amount"].value == 7  # not overwritten
    finally:
        form.close()


def test_set_value_of_a_field_without_a_control_is_saved_with_the_form(app: Appbook) -> None:
    form = make_form(app)  # number, title and amount only
    form.controls["number"].input.value = "INV-5"
    form.controls["title"].input.value = "Ink"
    form.set_value("status", 3)
    saved = form.save()
    assert saved is not None and saved["status"] == 3
    form.set_value("status", 4)  # on a loaded record: sent as a change
    assert form.changes() == {"status": 4}
    assert form.save() is not None and app["invoices"].get(saved["id"])["status"] == 4
    assert form.changes() == {}  # saved: nothing pending any more
