"""The control library, driven through the widget API: what code sets shows in the input,
what the user types becomes the engine's value, and refusals read as the engine's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest

from appbook.kernels.ui import controls as c
from appbook.kernels.ui.base import FieldControl
from appbook.kernels.ui.defaults import (
    CONTROL_KINDS,
    KIND_FIELD_TYPES,
    control_for,
    default_control,
    kinds_for,
)
from appbook.server.config import EngineConfig
from appbook.server.definitions import pages
from appbook.server.definitions.models import FIELD_TYPES, FieldDef
from appbook.server.engine import Appbook
from appbook.server.errors import ValidationError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "all_types"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Appbook]:
    """An engine on SQLite with the all-field-types components published."""
    engine = Appbook(
        EngineConfig.from_values(
            home=str(tmp_path), database_url=f"sqlite:///{tmp_path}/a.db", redis_url=""
        ),
        actor="tester",
    )
    engine.publish(FIXTURES)
    yield engine
    engine.close()


def field(app: Appbook, name: str) -> FieldDef:
    return app["items"].definition.fields[name]


def engine_errors(app: Appbook, name: str, value: Any) -> list[str]:
    """What the engine says about ``value`` for items.``name`` on create."""
    with pytest.raises(ValidationError) as caught:
        app["items"].create({"code": "AB", name: value})
    return caught.value.errors[name]


def upload(control: c.FileField, name: str, media_type: str, data: bytes) -> None:
    """What the browser sends when a file is chosen (ipywidgets 8 wire format)."""
    entry = {
        "name": name,
        "type": media_type,
        "size": len(data),
        "content": memoryview(data),
        "last_modified": 1_700_000_000_000,
    }
    control.input.set_state({"value": [entry]})


# -- defaults.py ------------------------------------------------------------------------


def test_every_field_type_has_a_default_control() -> None:
    expected = {
        "string": c.TextField, "text": c.TextArea, "integer": c.NumberField,
        "number": c.NumberField, "boolean": c.Checkbox, "date": c.DateField,
        "time": c.TimeField, "datetime": c.DateTimeField, "enum": c.Select,
        "reference": c.ReferenceField, "array": c.MultiSelect, "file": c.FileField,
        "uri": c.TextField, "email": c.TextField, "json": c.CodeEditor,
    }  # fmt: skip
    assert set(expected) == set(FIELD_TYPES)
    for field_type, cls in expected.items():
        assert default_control(FieldDef(type=field_type)) is cls
        assert issubclass(cls, FieldControl)


def test_control_kinds_are_the_ones_pages_accept() -> None:
    assert CONTROL_KINDS == pages.CONTROL_KINDS
    assert set(KIND_FIELD_TYPES) == set(CONTROL_KINDS)
    assert all(kinds_for(t) for t in FIELD_TYPES)  # every type can be shown somehow
    assert kinds_for("enum") == ("select", "radio")


def test_control_for_refuses_unknown_kinds_misfits_and_properties() -> None:
    with pytest.raises(ValueError, match=r"unknown control kind 'dial' \(kinds: text, password"):
        control_for(FieldDef(type="string"), name="x", kind="dial")
    with pytest.raises(ValueError, match=r"'checkbox' cannot show string field 'x' \(kinds: text"):
        control_for(FieldDef(type="string"), name="x", kind="checkbox")
    with pytest.raises(
        ValueError, match=r"unknown control properties colour \(properties: caption"
    ):
        control_for(FieldDef(type="string"), name="x", colour="red")
    with pytest.raises(ValueError, match="a slider needs both min and max"):
        control_for(FieldDef(type="integer", min=0), name="x", kind="slider")


def test_control_for_applies_properties() -> None:
    ctl = control_for(
        FieldDef(type="string", title="Code"),
        name="code",
        kind="text",
        caption="Product code",
        disabled=True,
        visible=False,
        required=True,
        placeholder="A-123",
        width="12em",
        css_class="big wide",
    )
    assert isinstance(ctl, c.TextField)
    assert ctl.caption == "Product code" and "Product code" in ctl._caption.value
    assert ctl.required and "*" in ctl._caption.value
    assert ctl.input.disabled and ctl.layout.display == "none"
    assert ctl.input.placeholder == "A-123"
    assert ctl.layout.width == "12em"
    assert {"big", "wide", "appbook-control"} <= set(ctl._dom_classes)
    ctl.disabled, ctl.visible = False, True
    assert not ctl.input.disabled and ctl.layout.display == ""
    # None means "not set" (page nodes pass their optional properties through)
    plain = control_for(
        FieldDef(type="string", title="Code"), name="code", caption=None, width=None
    )
    assert plain.caption == "Code" and plain.layout.width is None


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("password", c.Password), ("textarea", c.TextArea), ("code", c.CodeEditor)],
)
def test_control_for_picks_other_text_kinds(kind: str, cls: type[FieldControl]) -> None:
    ctl = control_for(FieldDef(type="string", max_length=3), name="x", kind=kind)
    assert type(ctl) is cls
    ctl.input.value = "abcd"
    assert ctl.error == "must be at most 3 characters" and ctl.value is None
    ctl.input.value = "abc"
    assert ctl.error == "" and ctl.value == "abc"


# -- round trips for every field type -----------------------------------------------------

AWARE = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))

# (field, control class, value from code, what the input shows, what the user enters,
#  the value that becomes)
ROUND_TRIPS = [
    ("code", c.TextField, "AB-1", "AB-1", "ZX9", "ZX9"),
    ("notes", c.TextArea, "two\nlines", "two\nlines", "more", "more"),
    ("qty", c.NumberField, 5, "5", " 12 ", 12),
    ("price", c.NumberField, 2.5, "2.5", "3", 3.0),
    ("active", c.Checkbox, True, True, False, False),
    ("day", c.DateField, date(2024, 2, 29), date(2024, 2, 29), date(2025, 1, 1), date(2025, 1, 1)),
    ("at_time", c.TimeField, time(9, 30), time(9, 30), time(17, 5, 1), time(17, 5, 1)),
    (
        "due",
        c.DateTimeField,
        AWARE,
        AWARE,
        datetime(2024, 5, 6, 9, 0, tzinfo=PARIS),
        datetime(2024, 5, 6, 7, 0, tzinfo=UTC),
    ),
    ("status", c.Select, 1, 1, 2, 2),
    ("colour", c.Select, "red", "red", "green", "green"),
    ("tags", c.MultiSelect, ["a", "b"], ["a", "b"], ["x"], ["x"]),
    ("buyers", c.MultiSelect, [1, 2], ["1", "2"], ["3"], [3]),
    (
        "link",
        c.TextField,
        "https://example.org/a",
        "https://example.org/a",
        "https://x.org",
        "https://x.org",
    ),
    ("contact", c.TextField, "a@example.org", "a@example.org", " b@example.org ", "b@example.org"),
    (
        "extra",
        c.CodeEditor,
        {"a": [1, 2]},
        '{\n  "a": [\n    1,\n    2\n  ]\n}',
        '{"b": true}',
        {"b": True},
    ),
]


@pytest.mark.parametrize(
    ("name", "cls", "value", "shown", "entered", "result"),
    ROUND_TRIPS,
    ids=[row[0] for row in ROUND_TRIPS],
)
def test_default_control_round_trips(
    app: Appbook, name: str, cls: type, value: Any, shown: Any, entered: Any, result: Any
) -> None:
    app["suppliers"].import_rows([{"name": n} for n in ("S1", "S2", "S3")])  # ids 1-3
    ctl = control_for(field(app, name), name=name, app=app)
    assert type(ctl) is cls
    assert ctl.value is None and ctl.error == ""
    ctl.value = value
    assert ctl.input.value == shown and ctl.error == ""
    ctl.input.value = entered
    assert ctl.value == result and type(ctl.value) is type(result)
    assert ctl.error == "" and ctl.check()
    app["items"].create({"code": "AB", name: ctl.value})  # the engine takes it as it is


def test_select_shows_the_label_of_the_chosen_value(app: Appbook) -> None:
    ctl = control_for(field(app, "status"), name="status")
    ctl.value = 2
    assert ctl.input.label == "Closed"


def test_values_from_code_are_normalised_to_engine_terms() -> None:
    due = c.DateTimeField(name="due")
    due.value = datetime(2024, 1, 2, 3, 4)  # naive: taken as UTC, as the engine does
    assert due.value == datetime(2024, 1, 2, 3, 4, tzinfo=UTC) and due.value.tzinfo is UTC
    assert due.input.value == due.value
    qty = c.NumberField(FieldDef(type="integer"), name="qty")
    qty.set_trait("value", "7")  # text, as an import would give it
    assert qty.value == 7 and qty.input.value == "7"


def test_invalid_values_from_code_show_the_engine_message_and_stay(app: Appbook) -> None:
    qty = control_for(field(app, "qty"), name="qty")
    qty.value = -3
    assert qty.error == "must be at least 0" and qty.value == -3 and qty.input.value == "-3"
    assert not qty.check()
    status = control_for(field(app, "status"), name="status")
    status.value = 9
    assert status.error == engine_errors(app, "status", 9)[0]
    assert status.input.index is None


def test_empty_from_code_is_not_an_error_until_checked(app: Appbook) -> None:
    code = control_for(field(app, "code"), name="code")
    code.value = "AB"
    code.value = None  # a form starting a new record
    assert code.error == "" and code.input.value == ""
    assert not code.check() and code.error == "is required"


# -- the engine's messages ----------------------------------------------------------------

# (field, text typed, the same value as the engine receives it)
INVALID = [
    ("qty", "-1", -1),
    ("qty", "1001", 1001),
    ("price", "-0.5", -0.5),
    ("code", "a1", "a1"),
    ("code", "A", "A"),
    ("code", "ABCDEFGHIJKLM", "ABCDEFGHIJKLM"),
    ("contact", "nope", "nope"),
    ("link", "not a link", "not a link"),
]


@pytest.mark.parametrize(("name", "typed", "value"), INVALID)
def test_invalid_input_shows_the_engine_message(
    app: Appbook, name: str, typed: str, value: Any
) -> None:
    ctl = control_for(field(app, name), name=name)
    ctl.input.value = typed
    assert [ctl.error] == engine_errors(app, name, value)
    assert ctl.value is None  # nothing invalid is published
    assert ctl.input.value == typed  # nothing typed is lost


def test_messages_for_text_that_does_not_parse(app: Appbook) -> None:
    qty = control_for(field(app, "qty"), name="qty")
    qty.input.value = "abc"
    assert qty.error == "expected an integer, got 'abc'"
    assert qty.hint.value == '<span class="appbook-hint">between 0 and 1000</span>'
    extra = control_for(field(app, "extra"), name="extra")
    extra.input.value = '{"a":'
    assert extra.error.startswith("invalid JSON: Expecting value at character 5")
    tags = control_for(field(app, "tags"), name="tags")
    tags.input.value = list("abcdef")
    assert [tags.error] == engine_errors(app, "tags", list("abcdef"))
    buyers = control_for(field(app, "buyers"), name="buyers")
    buyers.input.value = ["x"]
    assert buyers.error == "item 0: expected the id of a suppliers record, got text 'x'"


def test_number_hint_follows_the_bounds() -> None:
    assert c.NumberField(FieldDef(type="number", min=0.5), name="x").hint.value.endswith(
        "at least 0.5</span>"
    )
    assert c.NumberField(FieldDef(type="integer", max=9), name="x").hint.value.endswith(
        "at most 9</span>"
    )
    assert c.NumberField(name="x").hint.layout.display == "none"


@pytest.mark.parametrize(
    ("name", "entered", "cleared"),
    [
        ("code", "AB", ""),
        ("status", 1, None),
        ("day", date(2024, 1, 1), None),
        ("tags", ["a"], []),
    ],
)
def test_required_and_empty_is_an_error(
    app: Appbook, name: str, entered: Any, cleared: Any
) -> None:
    ctl = control_for(field(app, name), name=name, required=True)
    assert ctl.error == ""  # a fresh control is not an error yet
    assert not ctl.check() and ctl.error == "is required"
    ctl.input.value = entered
    assert ctl.error == "" and ctl.value is not None
    ctl.input.value = cleared
    assert ctl.error == "is required"


# -- choices --------------------------------------------------------------------------------


def test_select_options_come_from_the_choices(app: Appbook) -> None:
    ctl = control_for(field(app, "status"), name="status")
    assert ctl.input.options == (("", None), ("New", 0), ("Open", 1), ("Closed", 2))
    ctl.input.value = 1
    ctl.required = True  # the empty choice goes, the selection stays
    assert ctl.input.options == (("New", 0), ("Open", 1), ("Closed", 2))
    assert ctl.input.value == 1 and ctl.value == 1
    ctl.input.index = None
    assert ctl.error == "is required"
    required = control_for(field(app, "colour"), name="colour", required=True)
    assert required.input.options == (("Red", "red"), ("Green", "green"))
    assert required.input.index is None and required.value is None


def test_radio_buttons_offer_the_choices(app: Appbook) -> None:
    ctl = control_for(field(app, "status"), name="status", kind="radio")
    assert isinstance(ctl.input, widgets.RadioButtons)
    assert ctl.input.options == (("New", 0), ("Open", 1), ("Closed", 2))
    assert ctl.input.index is None
    ctl.input.value = 0
    assert ctl.value == 0
    ctl.value = 2
    assert ctl.input.label == "Closed"


def test_multiselect_uses_choices_when_it_has_some() -> None:
    spec = FieldDef(type="array", of="string", choices={"r": "Red", "g": "Green", "b": "Blue"})
    ctl = control_for(spec, name="colours")
    assert isinstance(ctl, c.MultiSelect) and isinstance(ctl.input, widgets.SelectMultiple)
    assert ctl.input.options == (("Red", "r"), ("Green", "g"), ("Blue", "b"))
    ctl.input.value = ("g", "b")
    assert ctl.value == ["g", "b"]
    ctl.value = ["r"]
    assert ctl.input.value == ("r",)
    ctl.input.value = ()
    assert ctl.value is None


def test_multiselect_tags_for_arrays_without_choices() -> None:
    ctl = c.MultiSelect(name="tags")
    assert isinstance(ctl.input, widgets.TagsInput) and ctl.tags
    ctl.input.value = ["red", "blue"]
    assert ctl.value == ["red", "blue"]
    dates = c.MultiSelect(FieldDef(type="array", of="date"), name="days")
    dates.value = [date(2024, 1, 31)]
    assert dates.input.value == ["2024-01-31"]
    dates.input.value = ["2024-02-01"]
    assert dates.value == [date(2024, 2, 1)]


# -- booleans and sliders ----------------------------------------------------------------------


def test_switch_flips_and_says_so() -> None:
    ctl = control_for(FieldDef(type="boolean"), name="on", kind="switch")
    assert isinstance(ctl.input, widgets.ToggleButton)
    assert ctl.input.description == "Off" and "appbook-switch" in ctl.input._dom_classes
    ctl.input.value = True
    assert ctl.value is True and ctl.input.description == "On"
    ctl.value = False
    assert ctl.input.value is False and ctl.input.icon == "toggle-off"


def test_checkbox_shows_empty_as_unticked() -> None:
    ctl = c.Checkbox(name="ok", required=True)
    assert ctl.value is None and ctl.input.value is False
    assert not ctl.check() and ctl.error == "is required"  # unticked is not a choice yet
    ctl.input.value = True
    ctl.input.value = False
    assert ctl.value is False and ctl.check()
    ctl.value = None
    assert ctl.input.value is False and not ctl.check()


def test_slider_uses_the_field_bounds(app: Appbook) -> None:
    qty = control_for(field(app, "qty"), name="qty", kind="slider")
    assert isinstance(qty.input, widgets.IntSlider)
    assert (qty.input.min, qty.input.max) == (0, 1000)
    assert qty.value is None and not qty.input.readout  # empty: at the minimum, no readout
    assert qty.check() and qty.value is None  # not moved: still empty
    qty.input.value = 40
    assert qty.value == 40 and qty.input.readout
    qty.value = 7
    assert qty.input.value == 7
    price = c.Slider(FieldDef(type="number", min=0, max=2), name="price")
    assert isinstance(price.input, widgets.FloatSlider) and price.input.step == 0.02
    price.input.value = 1.5
    assert price.value == 1.5
    with pytest.raises(ValueError, match="needs both min and max"):
        c.Slider(field(app, "price"), name="price")


# -- references -------------------------------------------------------------------------------


def test_reference_options_come_from_the_database(app: Appbook) -> None:
    ids = {n: app["suppliers"].create({"name": n})["id"] for n in ("Beta", "Acme", "Acme East")}
    ctl = control_for(field(app, "supplier"), name="supplier", app=app)
    assert isinstance(ctl, c.ReferenceField) and ctl.search is not None
    assert ctl.input.options == (
        ("", None), ("Acme", ids["Acme"]), ("Acme East", ids["Acme East"]), ("Beta", ids["Beta"])
    )  # fmt: skip
    ctl.search.value = "acme"
    assert [label for label, _ in ctl.input.options] == ["", "Acme", "Acme East"]
    ctl.input.value = ids["Acme East"]
    assert ctl.value == ids["Acme East"]
    ctl.value = ids["Beta"]  # the selected record stays among the options
    assert ctl.input.label == "Beta" and ctl.input.value == ids["Beta"]
    ctl.search.value = ""
    app["suppliers"].create({"name": "Zed"})
    ctl.refresh()
    assert ctl.input.options[-1][0] == "Zed" and ctl.input.value == ids["Beta"]
    ctl.disabled = True
    assert ctl.input.disabled and ctl.search.disabled
    app["items"].create({"code": "AB", "supplier": ctl.value})


def test_reference_search_keeps_fifty(app: Appbook) -> None:
    app["suppliers"].import_rows([{"name": f"S{i:03d}"} for i in range(60)])
    ctl = c.ReferenceField(field(app, "supplier"), name="supplier", app=app, required=True)
    assert len(ctl.input.options) == 50 and ctl.input.options[0][0] == "S000"
    ctl.search.value = "S05"  # type: ignore[union-attr]
    assert [label for label, _ in ctl.input.options] == [f"S05{i}" for i in range(10)]


def test_reference_labels_records_without_a_string_field_by_id(app: Appbook) -> None:
    app.publish_texts(
        {
            "tickets.component.yaml": "name: tickets\nfields:\n  n: {type: integer}\n",
            "links.component.yaml": "name: links\nfields:\n  t: {type: reference, to: tickets}\n",
        }
    )
    first = app["tickets"].create({"n": 1})["id"]
    ctl = c.ReferenceField(app["links"].definition.fields["t"], name="t", app=app)
    assert ctl.input.options == (("", None), (f"#{first}", first))
    ctl.search.value = str(first)  # type: ignore[union-attr]
    assert ctl.input.options == (("", None), (f"#{first}", first))
    ctl.search.value = "nothing"  # type: ignore[union-attr]
    assert ctl.input.options == (("", None),)


def test_reference_without_app_takes_an_id(app: Appbook) -> None:
    ctl = c.ReferenceField(field(app, "supplier"), name="supplier")
    assert isinstance(ctl.input, widgets.Text) and ctl.search is None
    ctl.input.value = "7"
    assert ctl.value == 7
    ctl.input.value = "x"
    assert ctl.error == "expected the id of a suppliers record, got text 'x'"
    ctl.value = 3
    assert ctl.input.value == "3"


# -- files ------------------------------------------------------------------------------------


def test_file_upload_goes_to_the_file_store(app: Appbook) -> None:
    ctl = control_for(field(app, "scan"), name="scan", app=app)
    assert isinstance(ctl.input, widgets.FileUpload)
    assert ctl.input.accept == "application/pdf,image/*"
    upload(ctl, "scan.pdf", "application/pdf", PDF)
    assert ctl.error == "" and ctl.value is not None
    info = app.files.stat(ctl.value)
    assert (info.name, info.media_type, info.size) == ("scan.pdf", "application/pdf", len(PDF))
    assert app.files.get(ctl.value) == PDF
    assert "<b>scan.pdf</b>" in ctl.info.value and f'app.files.get("{ctl.value}")' in ctl.info.value
    assert ctl.input.value == ()  # the bytes are not kept in the widget
    record = app["items"].create({"code": "AB", "scan": ctl.value})
    shown = c.FileField(field(app, "scan"), name="scan", app=app, download_url="/f/{id}")
    shown.value = record["scan"]
    assert f'href="/f/{record["scan"]}"' in shown.info.value
    shown.clear()
    assert shown.value is None and shown.info.value == ""


def test_file_upload_refusals_become_the_error(app: Appbook) -> None:
    ctl = control_for(field(app, "scan"), name="scan", app=app)
    upload(ctl, "photo.png", "image/png", PNG)
    stored = ctl.value
    upload(ctl, "notes.txt", "text/plain", b"hello")
    assert ctl.error == "type text/plain is not accepted (accepts application/pdf, image/*)"
    assert ctl.value == stored  # the previous file stays
    upload(ctl, "big.pdf", "application/pdf", b"%" * (1024 * 1024 + 1))
    assert ctl.error == "file 'big.pdf' is larger than the limit of 1 MB (1048576 bytes)"
    assert [f.name for f in app.files.list()] == ["photo.png"]  # nothing else was stored


def test_file_upload_without_app_is_refused() -> None:
    ctl = c.FileField(name="scan")
    upload(ctl, "scan.pdf", "application/pdf", PDF)
    assert ctl.error == "file upload needs the Appbook file store (pass app=...)"
    assert ctl.value is None


# -- display controls ---------------------------------------------------------------------------


def test_label_and_rich_text() -> None:
    assert c.Label("<b>plain</b>").value == "<b>plain</b>"
    assert isinstance(c.Label(), widgets.Label)
    rich = c.RichText("<b>Hello</b>")
    assert rich.value == "<b>Hello</b>" and "appbook-rich-text" in rich._dom_classes


def test_hyperlink_is_escaped_and_safe() -> None:
    link = c.Hyperlink('Q&A "docs"', "https://example.org/?a=1&b=<2>")
    assert link.value == (
        '<a href="https://example.org/?a=1&amp;b=&lt;2&gt;" target="_blank" '
        'rel="noopener noreferrer">Q&amp;A &quot;docs&quot;</a>'
    )
    link.new_tab = False
    assert "target" not in link.value
    link.url = "javascript:alert(1)"
    assert link.value == "<span>Q&amp;A &quot;docs&quot;</span>"
    link.url = " java\tscript:alert(1)"
    assert link.value.startswith("<span>")
    assert c.Hyperlink(url="mailto:a@b.org").value.startswith('<a href="mailto:a@b.org"')


def test_image_from_bytes_and_from_a_stored_file(app: Appbook) -> None:
    assert c.Image(PNG).value == PNG
    png = app.files.put(PNG, name="dot.png")
    image = c.Image(file_id=png.id, app=app)
    assert image.value == PNG and image.format == "png"
    pdf = app.files.put(PDF, name="a.pdf")
    with pytest.raises(ValueError, match="is application/pdf, not an image"):
        image.show_file(pdf.id)
    with pytest.raises(ValueError, match="pass app="):
        c.Image(file_id=png.id)


def test_pdf_viewer_embeds_bounded_documents(app: Appbook) -> None:
    viewer = c.PdfViewer(PDF, height="300px")
    assert 'data="data:application/pdf;base64,' in viewer.value and "height:300px" in viewer.value
    stored = app.files.put(PDF, name="report.pdf")
    assert c.PdfViewer(file_id=stored.id, app=app).value == c.PdfViewer(PDF, app=app).value.replace(
        'title="PDF document"', 'title="report.pdf"'
    )
    small = c.PdfViewer(file_id=stored.id, app=app, max_size=10)
    assert (
        small.value
        == f"<em>report.pdf is too large to preview here ({len(PDF)} B; the limit is 10 B)</em>"
    )
    png = app.files.put(PNG, name="dot.png")
    with pytest.raises(ValueError, match="not a PDF"):
        c.PdfViewer(file_id=png.id, app=app)


def test_button_is_busy_while_its_handlers_run() -> None:
    button = c.Button("Save", icon="check")
    seen: list[tuple[bool, bool, str]] = []

    def handler(b: c.Button) -> None:
        seen.append((b.busy, b.disabled, b.icon))
        b.click()  # ignored while busy: no second run

    button.on_click(handler)
    button.click()
    assert seen == [(True, True, "spinner spin")]
    assert not button.busy and not button.disabled and button.icon == "check"
    button.on_click(handler, remove=True)
    button.click()
    assert len(seen) == 1
    with button.working():
        assert button.busy and "appbook-busy" in button._dom_classes
    assert not button.busy and "appbook-busy" not in button._dom_classes


def test_progress_bar_label() -> None:
    bar = c.ProgressBar(max=4)
    assert bar.label.value == "0%"
    bar.value = 1
    assert bar.bar.value == 1 and bar.label.value == "25%"
    bar.text = "1 of 4 rows"
    assert bar.label.value == "1 of 4 rows"
    bar.value = 9
    assert bar.bar.value == 4
    with pytest.raises(ValueError, match="greater than 0"):
        c.ProgressBar(max=0)


def test_confirmation_state_colours() -> None:
    status = c.ConfirmationState()
    assert status.value == ""
    status.show("saved")
    assert status.value == '<span style="color:#1b7f37">Saved</span>'
    status.show("conflict")
    assert "Record changed elsewhere" in status.value and "#b35c00" in status.value
    status.show("error", "Not <saved>")
    assert status.value == '<span style="color:#b00020">Not &lt;saved&gt;</span>'
    status.clear()
    assert status.value == ""


def test_code_editor_is_monospace_and_keeps_text_fields_as_text() -> None:
    code = c.CodeEditor(FieldDef(type="text"), name="script")
    assert "appbook-code" in code.input._dom_classes
    code.input.value = "print('hi')"
    assert code.value == "print('hi')"
    data = c.CodeEditor(name="data")
    data.value = "just a string"  # a JSON string value, not JSON text
    assert data.error == "" and json.loads(data.input.value) == "just a string"
