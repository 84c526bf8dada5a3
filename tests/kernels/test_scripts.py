"""Component scripts driven through real widgets against a real database (SQLite and
PostgreSQL): reference app 3, each call of the context API, failures that never break the
page, and the publish-time check of ``call`` actions."""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appbook.kernels.ui.page import AppView, PageView, show
from appbook.server.definitions.pages import Action
from appbook.server.engine import Appbook, default_actor
from appbook.server.errors import DefinitionError

SCRIPTING = Path(__file__).parents[2] / "notebooks" / "examples" / "scripting"

PROBES_YAML = """\
name: probes
fields:
  name:  {type: string, required: true}
  size:  {type: integer, min: 0}
  note:  {type: string}
  flag:  {type: boolean, default: false}
workflows:
  grow:
    stages:
      - name: s
        steps:
          - {name: mark, update_field: {field: note, value: grown}}
pages:
  main:
    params: [id]
    layout:
      - field: name
      - field: size
      - name: buttons
        panel:
          direction: horizontal
          children:
            - button: {text: Go, action: {call: go}}
              name: go
            - button: {text: Save, action: save}
            - button: {text: Go then save, action: [{call: refuse}, save]}
            - button: {text: Tidy, action: {run_dataflow: tidy}}
  other:
    params: [id]
    layout:
      - field: name
      - button: {text: Back, action: back}
  dlg:
    dialog: true
    params: [id]
    layout:
      - field: name
      - button: {text: Close, action: close}
"""
DATAFLOWS_YAML = """\
dataflows:
  tidy:
    stages:
      - name: s
        steps:
          - {name: form, action_model: {}}
          - {name: shout, script: {function: shout}}
          - {name: save, update: {fields: {name: "item.name", size: "item.size"}}}
          - {name: answer, respond: {value: "'Tidied ' ~ items[0].name"}}
          - {name: show, form_action: {action: open_dialog, page: dlg, params: {id: "item.id"}}}
          - {name: file, form_action: {action: open_file, file: "'f-1'"}}
"""
OTHERS_YAML = """\
name: others
fields:
  label: {type: string}
pages:
  list:
    layout:
      - grid: {columns: [label]}
"""
PROBES_PY = """\
import sys

seen = []      # what the hooks saw, for the tests to read
actions = {}   # what the next "go" call does: a function of the context
loads = 0


def on_load(context):
    global loads
    loads += 1
    seen.append(("on_load", context.page, context.record.id, context.record.is_new))
    if context.page == "main" and context.record.is_new:
        context.form.get("size").set_value(3)


def on_change(context, field):
    seen.append(("on_change", field, context.record[field]))
    if field == "size" and context.record["size"] == 13:
        raise ZeroDivisionError("thirteen")
    if field == "size" and context.record["size"] == 99:
        sys.exit(1)
    if field == "size" and context.record["size"] == 8:
        context.form.get("size").set_value(80)  # the field being changed: shown at once
    if field == "size" and (context.record["size"] or 0) > 10 and context.record["size"] != 80:
        context.form.get("size").add_error("at most 10 here")


def before_save(context):
    seen.append(("before_save", dict(context.record)))
    if context.record["name"] == "nope":
        context.form.get("name").add_error("not that name")


def after_save(context):
    seen.append(("after_save", context.record.id))
    context.logger.info("saved %s", context.record.id)


def go(context):
    return actions.pop("go")(context)


def refuse(context):
    return False


def shout(items):  # a dataflow's script step: items in, items out
    return [{**item, "name": item["name"].upper()} for item in items]
"""


def write_probes(folder: Path, script: str = PROBES_PY, yaml: str = PROBES_YAML) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probes.component.yaml").write_text(yaml)
    (folder / "others.component.yaml").write_text(OTHERS_YAML)
    if script:
        (folder / "probes.py").write_text(script)
    return folder


@pytest.fixture
def probes(app: Appbook, tmp_path: Path) -> Iterator[AppView]:
    """The probes app on its main page (a new record), acting as 'tester'."""
    app.publish(write_probes(tmp_path / "defs"))
    shell = show("probes", "main", app=app, live=False)
    yield shell
    shell.close()


def module(shell: AppView) -> Any:
    return shell.scripts.module("probes")


def button(page: PageView, text: str) -> Any:
    """The button with ``text`` on ``page``, as the browser would press it."""
    import ipywidgets as widgets

    def walk(widget: Any) -> Iterator[Any]:
        yield widget
        for child in getattr(widget, "children", ()):
            yield from walk(child)

    found = [w for w in walk(page) if isinstance(w, widgets.Button) and w.description == text]
    assert found, f"no button {text!r}"
    return found[0]


def press(page: PageView, text: str) -> None:
    button(page, text).click()


def go(shell: AppView, action: Any) -> Any:
    """Press "Go", which calls ``action(context)``; what it returned."""
    result: dict[str, Any] = {}

    def call(context: Any) -> Any:
        result["value"] = action(context)
        return result["value"]

    module(shell).actions["go"] = call
    press(shell.current if shell.dialog is None else shell.dialog, "Go")
    return result.get("value")


# -- reference app 3 ------------------------------------------------------------------
@pytest.fixture
def expenses(app: Appbook, tmp_path: Path) -> Iterator[AppView]:
    folder = tmp_path / "scripting"
    shutil.copytree(SCRIPTING, folder)
    app.publish(folder)
    shell = show("expenses", "all", app=app, live=False)
    yield shell
    shell.close()


def test_reference_app_defaults_states_validation_dialog_and_save(
    app: Appbook, expenses: AppView
) -> None:
    press(expenses.current, "New claim")
    edit = expenses.current
    c = edit.controls
    assert edit.name == "edit" and edit.form is not None and edit.form.record_id is None
    # defaults on a new record (on_load)
    assert c["spent_on"].value == dt.date.today() and c["currency"].value == "EUR"
    assert c["submitted_by"].value == "tester" and c["status"].value == "draft"
    # hidden and disabled controls depending on values
    assert not c["nights"].visible and c["receipt_number"].input.disabled
    assert edit.named["approve"].layout.display == "none"  # not saved yet
    c["title"].input.value = "Hotel in Lyon"
    c["category"].input.value = "travel"
    assert c["nights"].visible
    c["amount"].input.value = "80"
    assert not c["receipt_number"].input.disabled and c["receipt_number"].required
    # validation on change: an error under the field at once
    c["category"].input.value = "meals"
    c["amount"].input.value = "250"
    assert c["amount"].error == "meals claims are limited to 200" and not c["nights"].visible
    c["spent_on"].input.value = dt.date.today() + dt.timedelta(days=3)
    assert c["spent_on"].error == "cannot be in the future"
    # before_save refuses while the errors stand; nothing is written
    c["receipt_number"].input.value = "R-77"
    press(edit, "Save")
    assert app["expenses"].count() == 0
    assert c["amount"].error == "meals claims are limited to 200"
    assert edit.form.status.kind == "error"
    c["amount"].input.value = "120"
    c["spent_on"].input.value = dt.date.today()
    assert c["amount"].error == "" and c["spent_on"].error == ""
    press(edit, "Save")
    (saved,) = app["expenses"].query()
    assert (saved["amount"], saved["receipt_number"], saved["submitted_by"]) == (
        120,
        "R-77",
        "tester",
    )
    assert saved["currency"] == "EUR" and saved["status"] == "draft"
    # the approve button appears once saved; it opens the dialog (call: approve)
    assert edit.named["approve"].layout.display == ""
    press(edit, "Approve…")
    dialog = expenses.dialog
    assert dialog is not None and dialog.name == "approve" and dialog.form is not None
    assert dialog.form.record_id == saved["id"] and dialog.controls["amount"].value == 120
    press(dialog, "Approve")  # approved_by is required: refused, the dialog stays
    assert expenses.dialog is dialog and dialog.controls["approved_by"].error == "is required"
    dialog.controls["approved_by"].input.value = "Grace"
    press(dialog, "Approve")
    assert expenses.dialog is None
    stored = app["expenses"].get(saved["id"])
    assert (stored["status"], stored["approved_by"]) == ("approved", "Grace")
    # on_close refreshed the claim under the dialog
    assert c["status"].value == "approved" and c["approved_by"].value == "Grace"
    assert edit.named["approve"].layout.display == "none"
    log = [text for _, text in expenses.scripts.log.entries]
    assert any(f"claim {saved['id']} approved by tester" in line for line in log)


# -- the context API ------------------------------------------------------------------
def test_hooks_run_on_load_on_change_before_and_after_save(app: Appbook, probes: AppView) -> None:
    page, seen = probes.current, module(probes).seen
    assert seen == [("on_load", "main", None, True)]
    assert page.controls["size"].value == 3  # the default on_load set
    page.controls["size"].input.value = "5"
    assert seen[-1] == ("on_change", "size", 5)
    page.controls["size"].input.value = "8"
    assert seen[-1] == ("on_change", "size", 8)  # set_value in on_change: no second call
    assert page.controls["size"].value == 80 and page.controls["size"].input.value == "80"
    page.form.set_value("size", 6)  # code, not the user: no on_change
    assert seen[-1] == ("on_change", "size", 8)
    page.controls["name"].input.value = "Ada"
    press(page, "Save")
    (record,) = app["probes"].query()
    assert seen[-2:] == [
        ("before_save", {"name": "Ada", "size": 6}),
        ("after_save", record["id"]),
    ]
    page.form.reload()
    assert seen[-1] == ("on_load", "main", record["id"], False)


def test_record_and_form_field_api(app: Appbook, probes: AppView) -> None:
    page = probes.current
    rec = app["probes"].create({"name": "Ada", "size": 2})
    page.form.load(rec["id"])

    def read(context: Any) -> Any:
        r = context.record
        return (r.id, r.version, r.is_new, r["name"], dict(r), context.form.get("size").value)

    assert go(probes, read) == (rec["id"], 1, False, "Ada", {"name": "Ada", "size": 2}, 2)

    def unknown(context: Any) -> Any:
        return context.record["nope"]

    go(probes, unknown)  # a KeyError in the script: said briefly, logged
    assert page.status.text == "Something went wrong in this page (go)."

    def write(context: Any) -> None:
        context.form.get("size").set_value(7)
        context.form.get("note").set_value("not on the page")  # saved with the next save
        context.form.get("name").add_error("looks odd")

    go(probes, write)
    assert page.controls["size"].value == 7 and page.controls["size"].input.value == "7"
    assert page.controls["name"].error == "looks odd"
    press(page, "Save")  # the script's error stands: refused, nothing written
    assert app["probes"].get(rec["id"])["version"] == 1
    assert page.controls["name"].error == "looks odd"
    go(probes, lambda context: context.form.get("name").clear_error())
    assert page.controls["name"].error == ""
    press(page, "Save")
    stored = app["probes"].get(rec["id"])
    assert (stored["size"], stored["note"]) == (7, "not on the page")


def test_an_error_added_on_change_stands_until_the_user_changes_the_field(
    app: Appbook, probes: AppView
) -> None:
    page = probes.current
    page.controls["name"].input.value = "Ada"
    page.controls["size"].input.value = "12"
    assert page.controls["size"].error == "at most 10 here"
    press(page, "Save")
    assert app["probes"].count() == 0 and page.controls["size"].error == "at most 10 here"
    page.controls["size"].input.value = "4"
    assert page.controls["size"].error == ""
    press(page, "Save")
    assert app["probes"].count() == 1


def test_before_save_refuses_with_an_error_under_the_field(app: Appbook, probes: AppView) -> None:
    page = probes.current
    page.controls["name"].input.value = "nope"
    press(page, "Save")
    assert page.controls["name"].error == "not that name"
    assert page.form.status.text == "Not saved: see the messages under the fields."
    assert app["probes"].count() == 0
    page.controls["name"].input.value = "fine"
    press(page, "Save")
    assert app["probes"].count() == 1


def test_controls_by_field_and_by_name(app: Appbook, probes: AppView) -> None:
    page = probes.current

    def arrange(context: Any) -> list[str]:
        controls = context.controls
        controls["size"].disabled = True
        controls["size"].visible = False
        controls["name"].required = False
        controls["buttons"].disabled = True  # a named panel: every button in it
        return sorted(controls)

    assert go(probes, arrange) == ["buttons", "go", "name", "size"]
    size, name = page.controls["size"], page.controls["name"]
    assert size.disabled and size.input.disabled and not size.visible
    assert size.layout.display == "none" and not name.required
    assert all(b.disabled for b in page.named["buttons"].children)

    def back(context: Any) -> tuple[bool, bool]:
        controls = context.controls
        controls["buttons"].disabled = False
        controls["go"].visible = False
        return controls["buttons"].disabled, controls["go"].visible

    assert go(probes, back) == (False, False)
    assert page.named["go"].layout.display == "none"
    page.named["go"].layout.display = ""

    def bad(context: Any) -> None:
        context.controls["go"].required = True

    go(probes, bad)  # only fields can be required: a TypeError, said briefly
    assert "Something went wrong" in page.status.text
    go(probes, lambda context: context.controls["nope"])
    assert "Something went wrong" in page.status.text


def test_commands_open_back_other_component_and_dialog(app: Appbook, probes: AppView) -> None:
    rec = app["probes"].create({"name": "Ada"})
    main = probes.current
    go(probes, lambda context: context.commands.open_page("other", id=rec["id"]))
    other = probes.current
    assert other.name == "other" and other.form is not None
    assert other.controls["name"].value == "Ada"
    other.hooks.run(lambda context: context.commands.navigate_back())
    assert probes.current is main
    go(probes, lambda context: context.commands.open_component("others", "list"))
    assert probes.current.component == "others" and probes.current.name == "list"
    probes.back()
    closed: list[Any] = []

    def dialog(context: Any) -> None:
        context.dialog("probes", "dlg", rec["id"], on_close=lambda ctx: closed.append(ctx.page))

    go(probes, dialog)
    assert probes.dialog is not None and probes.dialog.name == "dlg"
    assert probes.dialog.controls["name"].value == "Ada"
    probes.dialog.hooks.run(lambda context: context.commands.close_dialog())
    assert probes.dialog is None and closed == ["main"]
    go(probes, lambda context: context.commands.open_page("dlg", dialog=True))
    assert probes.dialog is not None and probes.dialog.form.record_id is None
    press(probes.dialog, "Close")
    assert probes.dialog is None and closed == ["main"]  # on_close belonged to the first


def test_commands_refresh_run_workflow_and_app(app: Appbook, probes: AppView) -> None:
    page = probes.current
    rec = app["probes"].create({"name": "Ada", "size": 1})
    page.form.load(rec["id"])

    def bump(context: Any) -> int:
        context.app["probes"].update(context.record.id, {"size": 9})
        context.commands.refresh()
        return context.app["probes"].count()

    assert go(probes, bump) == 1
    assert page.controls["size"].value == 9 and page.form.version == 2

    def grow(context: Any) -> str:
        return str(context.commands.run_workflow("grow")["status"])

    assert go(probes, grow) == "succeeded"
    assert app["probes"].get(rec["id"])["note"] == "grown"
    assert page.status.text == "Workflow grow: succeeded."
    go(probes, lambda context: context.commands.run_dataflow("nightly"))
    assert "NotFound" not in page.status.text  # 'tester' is no maker: no internals
    assert "Something went wrong" in page.status.text


def test_user_roles_makers_and_the_log(
    app: Appbook, probes: AppView, capfd: pytest.CaptureFixture[str]
) -> None:
    def who(context: Any) -> Any:
        context.logger.info("hello from %s", context.user.name)
        return context.user

    user = go(probes, who)
    assert (user.name, user.roles, user.is_maker) == ("tester", (), False)
    assert probes.scripts.log.layout.display == "none"  # viewers never see the log
    assert any("hello from tester" in text for _, text in probes.scripts.log.entries)
    assert "INFO appbook.app.probes: hello from tester" in capfd.readouterr().err
    app.users.add("tester", roles=["developer", "clerks"])
    user = go(probes, who)
    assert (user.roles, user.is_maker) == (("developer", "clerks"), True)
    app.users.disable("tester")  # a disabled user keeps their history, not their roles
    user = go(probes, who)
    assert (user.roles, user.is_maker) == ((), False)
    app.users.disable("tester", False)
    owner = show("probes", "main", app=app.as_user(default_actor()), live=False)
    try:
        assert owner.scripts.log.layout.display == ""  # the server's owner is a maker
        owner.scripts.log.toggle.click()
        assert owner.scripts.log.expanded
    finally:
        owner.close()


def test_the_run_dataflow_action_and_command(app: Appbook, tmp_path: Path) -> None:
    app.publish(write_probes(tmp_path / "defs", yaml=PROBES_YAML + DATAFLOWS_YAML))
    probes = show("probes", "main", app=app, live=False)
    try:
        dataflow_action_and_command(app, probes)
    finally:
        probes.close()


def dataflow_action_and_command(app: Appbook, probes: AppView) -> None:
    page = probes.current
    rec = app["probes"].create({"name": "Ada", "size": 1})
    page.form.load(rec["id"])
    page.controls["size"].input.value = "5"  # not saved: the dataflow gets what is typed
    press(page, "Tidy")
    stored = app["probes"].get(rec["id"])
    assert (stored["name"], stored["size"]) == ("ADA", 5)
    assert page.status.text == "Tidied ADA"
    # its form actions: a dialog on the record, a link to the file
    assert probes.dialog is not None and probes.dialog.name == "dlg"
    assert probes.dialog.controls["name"].value == "ADA"
    (link,) = [c for c in page.children if "appbook-file-link" in c._dom_classes]
    assert 'href="../api/files/f-1"' in link.value
    probes.close_dialog()
    assert page.controls["name"].value == "ADA"  # the page under it was refreshed

    def tidy(context: Any) -> Any:
        return context.commands.run_dataflow(
            "tidy", record={"id": rec["id"], "name": "bo", "size": 5}
        )

    result = go(probes, tidy)
    assert result.value == "Tidied BO" and result.run_id is not None
    assert app["probes"].get(rec["id"])["name"] == "BO" and probes.dialog is not None
    probes.close_dialog()

    page.controls["size"].input.value = "-4"  # refused by the field's rule before running
    page.form.set_value("size", -4)
    press(page, "Tidy")  # the page checks its controls first, as a save does: not run
    assert page.controls["size"].error and "need attention" in page.form.status.text
    assert app["probes"].get(rec["id"])["size"] == 5


def test_a_preheated_page_learns_its_user(app: Appbook, probes: AppView) -> None:
    nobody = app.as_user("(not signed in yet)")
    shell = show("probes", "main", app=nobody, live=False)
    try:
        names: list[str] = []
        module(shell).on_load = lambda context: names.append(context.user.name)
        nobody.actor = default_actor()  # what the app kernel does when the request arrives
        shell.user_bound()
        assert names == [default_actor()] and shell.scripts.log.layout.display == ""
    finally:
        shell.close()


# -- failures -------------------------------------------------------------------------
def test_an_exception_in_a_hook_is_said_briefly_logged_and_the_page_goes_on(
    app: Appbook, probes: AppView, capfd: pytest.CaptureFixture[str]
) -> None:
    page = probes.current
    page.controls["size"].input.value = "13"  # on_change raises ZeroDivisionError
    assert page.status.kind == "error"
    assert page.status.text == "Something went wrong in this page (on_change)."
    assert "ZeroDivisionError" not in page.status.text  # a viewer sees no internals
    (_, text), *_ = [e for e in probes.scripts.log.entries if e[0] == "ERROR"]
    assert "probes.py: on_change failed" in text and 'File "probes.py", line' in text
    assert 'raise ZeroDivisionError("thirteen")' in text  # the script's own line
    err = capfd.readouterr().err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError: thirteen" in err
    page.controls["size"].input.value = "99"  # sys.exit() in a hook stops nothing
    assert "on_change" in page.status.text
    page.controls["size"].input.value = "4"
    page.controls["name"].input.value = "Still works"
    press(page, "Save")
    assert app["probes"].query()[0]["name"] == "Still works"


def test_makers_see_the_exception_and_where_to_look(app: Appbook, probes: AppView) -> None:
    app.users.add("tester", roles=["developer"])
    probes.current.controls["size"].input.value = "13"
    text = probes.current.status.text
    assert "ZeroDivisionError: thirteen" in text and "the traceback is in the Log" in text
    assert probes.scripts.log.layout.display == ""


def test_a_call_returning_false_stops_an_action_list(app: Appbook, probes: AppView) -> None:
    page = probes.current
    page.controls["name"].input.value = "Ada"
    press(page, "Go then save")
    assert app["probes"].count() == 0
    page.run(Action(call="missing"))
    assert page.status.text == "This page's script has no function 'missing'."


def test_a_script_that_fails_to_load_leaves_a_working_page(app: Appbook, tmp_path: Path) -> None:
    app.publish(
        write_probes(
            tmp_path / "defs",
            script="import no_such_module\n\ndef go(c): pass\ndef refuse(c): pass\n",
        )
    )
    shell = show("probes", "main", app=app, live=False)
    try:
        page = shell.current
        assert page.status.text == "Something went wrong in this page (loading probes.py)."
        assert any("ModuleNotFoundError" in t for _, t in shell.scripts.log.entries)
        page.controls["name"].input.value = "Ada"
        press(page, "Save")
        assert app["probes"].count() == 1
    finally:
        shell.close()


def test_each_app_session_has_its_own_module(app: Appbook, probes: AppView) -> None:
    other = show("probes", "main", app=app, live=False)
    try:
        assert module(other) is not module(probes)
        assert module(probes).loads == 1 and module(other).loads == 1
    finally:
        other.close()


def test_a_component_without_a_script_has_no_hooks(app: Appbook, tmp_path: Path) -> None:
    yaml = PROBES_YAML.replace("{call: go}", "save").replace("[{call: refuse}, save]", "save")
    app.publish(write_probes(tmp_path / "defs", script="", yaml=yaml))
    shell = show("probes", "main", app=app, live=False)
    try:
        assert shell.scripts.module("probes") is None and shell.current.status.text == ""
    finally:
        shell.close()


# -- publish-time checks --------------------------------------------------------------
def problems_of(app: Appbook, folder: Path) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        app.publish(folder)
    assert app.publications() == []  # nothing was published
    return [str(p) for p in info.value.problems]


def test_publish_refuses_unknown_call_functions_with_file_and_line(
    app: Appbook, tmp_path: Path
) -> None:
    script = PROBES_PY.replace("def refuse(context):", "async def refuse(context):")
    yaml = PROBES_YAML.replace("{call: go}", "{call: goo}")
    (problem_goo, problem_async) = problems_of(app, write_probes(tmp_path / "d", script, yaml))
    assert problem_goo.startswith(
        "probes.component.yaml:23 pages.main.layout[2].panel.children[0].button.action.call: "
    )
    assert "call 'goo': no function 'goo' in probes.py (functions: on_load," in problem_goo
    assert "'refuse' in probes.py:" in problem_async and "is async" in problem_async


def test_publish_refuses_calls_without_a_script_and_scripts_that_do_not_parse(
    app: Appbook, tmp_path: Path
) -> None:
    problems = problems_of(app, write_probes(tmp_path / "a", script=""))
    assert len(problems) == 2 and all("no script probes.py beside" in p for p in problems)
    (problem,) = problems_of(app, write_probes(tmp_path / "b", script="def go(:\n"))
    assert problem.startswith("probes.py:1: invalid Python")


def test_publish_refuses_two_nodes_of_a_page_with_one_name(app: Appbook, tmp_path: Path) -> None:
    yaml = PROBES_YAML.replace("      - field: size\n", "      - field: size\n        name: go\n")
    (problem,) = problems_of(app, write_probes(tmp_path / "d", yaml=yaml))
    assert "another node of page 'main' is named 'go'" in problem


def test_the_reference_app_publishes_with_its_script(app: Appbook) -> None:
    app.publish(SCRIPTING)
    source = app.source("expenses", "expenses.py").decode()
    assert "def on_change(context, field):" in textwrap.dedent(source)
