"""Pages run dataflows: the ``run_dataflow`` action and ``context.commands.run_dataflow``.

The dataflow runs in the app's kernel as the app's user
(``app[component].run_dataflow(name, inputs, record=...)``, all its writes in one
transaction). It gets the page's form values as its record (with the record's ``id`` once
saved, so its ``action_model`` step sees what the user typed, saved or not), or the clicked
row; the action's ``params`` are its inputs. Afterwards the page shows its record as
stored, its ``respond`` value goes to the status line (a text, or a mapping's
``message``), and its form actions are carried out in order: open a page or a dialog, open
a file (a link under the page), refresh. A refused write shows its messages under the
fields, as a save would, and changes nothing.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import ipywidgets as widgets

from ...server.errors import Conflict, ValidationError
from .form import under_field

if TYPE_CHECKING:
    from ...server.dataflows import DataflowResult
    from .page import PageView

FILE_LINK = "appbook-file-link"


def record_of(page: PageView, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the dataflow is called with: the clicked row, else the form's values."""
    if row:
        return dict(row)
    form = page.form
    if form is None:
        return None
    values = form.current()
    return values if form.record_id is None else {"id": form.record_id, **values}


def form_ready(page: PageView, row: Mapping[str, Any]) -> bool:
    """Before a run on the form's values, check the controls as a save does (a value a
    control refuses, a page-required field left empty, would otherwise reach the dataflow
    as empty); False when one fails, every message under its field."""
    form = page.form
    if row or form is None:
        return True
    checked = [control.check() for control in form.controls.values()]  # every error shows
    if all(checked):
        form.status.show("", "")  # an earlier "need attention" no longer holds
        return True
    form.status.show("error", "Some values need attention (see the messages under the fields).")
    return False


def run(
    page: PageView,
    name: str,
    inputs: Mapping[str, Any],
    row: Mapping[str, Any],
    record: int | Mapping[str, Any] | None = None,
) -> DataflowResult:
    """Run ``page``'s component's dataflow ``name``; a refused write raises after showing
    its messages under the fields."""
    handle = page.shell.app[page.component]
    called_with = record if record is not None else record_of(page, row)
    try:
        return handle.run_dataflow(
            name,
            dict(inputs),
            record=called_with if isinstance(called_with, int | None) else dict(called_with),
        )
    except ValidationError as exc:
        if page.form is not None:
            page.form.show_errors(exc)
        raise
    except Conflict as exc:  # a unique field already used (a VIN in the fleet): under it
        if page.form is not None and exc.field in page.form.controls:
            # The field's message as a save shows it; the status line names the step.
            named = getattr(exc, "dataflow_where", None) is not None
            message = exc.message.split(": ", 1)[-1] if named else exc.message
            page.form.controls[exc.field].error = under_field(message, exc.field)
        raise


def respond(page: PageView, name: str, result: DataflowResult) -> None:
    """Show the response and refresh what the run may have changed: the page's record (the
    values typed went to the dataflow, which saved what it meant to) and every view."""
    if page.form is not None and page.form.record_id is not None:
        page.form.reload()
    page.shell.refresh_pages()
    value = result.value
    if isinstance(value, Mapping) and isinstance(value.get("message"), str):
        value = value["message"]
    page.status.show("ok", value if isinstance(value, str) else f"Dataflow {name}: done.")


def apply(page: PageView, actions: list[dict[str, Any]]) -> None:
    """Carry out a run's form actions in order."""
    shell = page.shell
    for action in actions:
        kind, params = action.get("action"), dict(action.get("params") or {})
        if kind in ("open_page", "open_dialog") and action.get("page"):
            shell.open_page(page.component, action["page"], params, dialog=kind == "open_dialog")
        elif kind == "open_file" and action.get("file") is not None:
            show_file(page, str(action["file"]))
        elif kind == "refresh":
            if page.form is not None and page.form.record_id is not None:
                page.form.reload()
            shell.refresh_pages()


def show_file(page: PageView, file: str) -> None:
    """A link to ``file`` (a stored file's id, or an address) under the page."""
    href = file if file.startswith(("http://", "https://", "/")) else f"../api/files/{quote(file)}"
    link = widgets.HTML(
        f'<a href="{html.escape(href)}" target="_blank" rel="noopener noreferrer">Open the file</a>'
    )
    link.add_class(FILE_LINK)
    kept = [c for c in page.children if FILE_LINK not in getattr(c, "_dom_classes", ())]
    page.children = [*kept, link]
