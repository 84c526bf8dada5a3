"""The ``context`` a component script's functions receive.

>>> def on_change(context, field):
...     if field == "discount" and (context.record["discount"] or 0) > 30:
...         context.form.get("discount").add_error("more than 30% needs a manager")
...     context.controls["approve"].visible = context.user.is_maker

``context.record`` (the form's values, ``id``, ``version``, ``is_new``),
``context.form.get(field)`` (``value``, ``set_value``, ``add_error``, ``clear_error``),
``context.controls[name]`` (``disabled``, ``visible``, ``required``; by field name or by the
``name:`` of a layout node), ``context.commands`` (``open_page``, ``open_component``,
``navigate_back``, ``close_dialog``, ``refresh``, ``run_dataflow``, ``run_workflow``),
``context.dialog(component, page, record_id, on_close=...)``, ``context.user`` (``name``,
``roles``, ``is_maker``), ``context.logger``, ``context.app`` (the records API, acting as the
user), and ``context.page`` / ``context.row`` / ``context.params`` (the page's name, the
clicked row, the page's parameters).

Commands that change what is shown (pages, dialogs, refresh) take effect when the function
returns, in the order given, so a function never pulls the page from under itself; the
runs (``run_workflow``, ``run_dataflow``) happen at once and return their result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ...server.errors import NotFound
from .applog import is_maker, roles_of
from .base import FieldControl

if TYPE_CHECKING:
    import logging

    from ...server.dataflows import DataflowResult
    from ...server.engine import Appbook
    from .page import PageView


@dataclass(frozen=True)
class User:
    """Who uses the app: ``name``, ``roles``, and whether they are a maker."""

    name: str
    roles: tuple[str, ...]
    is_maker: bool


class Context:
    """What a script function gets (one per call)."""

    def __init__(self, page: PageView, row: Mapping[str, Any] | None = None) -> None:
        self._page = page
        self.record = Record(page)
        self.form = Form(page)
        self.controls = Controls(page)
        self.commands = Commands(page)
        self.row: dict[str, Any] = dict(row or {})
        self.params: dict[str, Any] = dict(page.params)
        self.page: str = page.name

    @property
    def user(self) -> User:
        """The signed-in user (read at each call: a preheated page learns it late)."""
        app = self._page.shell.app
        return User(app.actor, roles_of(app), is_maker(app))

    @property
    def logger(self) -> logging.Logger:
        """A logger writing to the app's Log panel (makers) and the server log."""
        return self._page.shell.scripts.logger(self._page.component)

    @property
    def app(self) -> Appbook:
        """The records API, acting as the user: ``context.app["cars"].query(...)``."""
        return self._page.shell.app

    def dialog(
        self,
        component: str,
        page: str,
        record_id: int | None = None,
        *,
        on_close: Callable[[Context], Any] | None = None,
    ) -> None:
        """Open ``component``'s ``page`` as a modal dialog (on record ``record_id``, or a new
        one); ``on_close(context)`` runs on this page when the dialog closes."""
        opener = self._page
        params = {} if record_id is None else {"id": record_id}

        def closed() -> None:
            if on_close is not None and opener.hooks.active:
                opener.hooks.run(on_close)

        def open_it() -> None:
            if opener.shell.open_page(component, page, params, dialog=True) is not None:
                opener.shell.on_dialog_close = closed  # not for a dialog that was refused

        opener.hooks.later(open_it)


class Record(Mapping[str, Any]):
    """The form's values by field name, and ``id``, ``version``, ``is_new``."""

    def __init__(self, page: PageView) -> None:
        self._page = page

    def _values(self) -> dict[str, Any]:
        form = self._page.form
        return {} if form is None else form.current()

    def __getitem__(self, name: str) -> Any:
        values = self._values()
        if name not in values:
            known = ", ".join(values) or "none"
            raise KeyError(f"page {self._page.name!r} has no field {name!r} (fields: {known})")
        return values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    @property
    def id(self) -> int | None:
        """The record's id (None while new)."""
        return None if self._page.form is None else self._page.form.record_id

    @property
    def version(self) -> int | None:
        """The version loaded (None while new)."""
        return None if self._page.form is None else self._page.form.version

    @property
    def is_new(self) -> bool:
        """Whether the form holds a record not saved yet."""
        return self._page.form is not None and self._page.form.record_id is None


class Form:
    """The page's form: ``get(field)``, and the errors scripts put under fields."""

    def __init__(self, page: PageView) -> None:
        self._page = page

    def get(self, field: str) -> Field:
        """Field ``field`` of the component (shown on the page or not)."""
        fields = self._page.shell.app[self._page.component].definition.fields
        if self._page.form is None:
            raise NotFound(f"page {self._page.name!r} has no form")
        if field not in fields:
            raise NotFound(
                f"component {self._page.component!r} has no field {field!r} "
                f"(fields: {', '.join(fields)})"
            )
        return Field(self._page, field)

    @property
    def errors(self) -> dict[str, list[str]]:
        """The errors scripts added and did not clear, by field."""
        return {k: list(v) for k, v in self._page.hooks.errors.items()}


class Field:
    """One field of the page's form."""

    def __init__(self, page: PageView, name: str) -> None:
        self._page, self.name = page, name

    @property
    def value(self) -> Any:
        """What the form holds for it."""
        return Record(self._page).get(self.name)

    def set_value(self, value: Any) -> None:
        """Put ``value`` in (shown at once; saved with the next save). Does not call
        ``on_change``."""
        assert self._page.form is not None
        self._page.form.set_value(self.name, value)

    def add_error(self, message: str) -> None:
        """Show ``message`` under the field; the form refuses to save until the script clears
        it or the user changes the field."""
        self._page.hooks.add_error(self.name, message)

    def clear_error(self) -> None:
        """Remove the messages scripts put under the field."""
        self._page.hooks.clear_error(self.name)


class Controls(Mapping[str, "Control"]):
    """The page's controls by ``name:`` (any node) or by field name (field nodes)."""

    def __init__(self, page: PageView) -> None:
        self._page = page

    def _all(self) -> dict[str, widgets.Widget]:
        return {**self._page.controls, **self._page.named}

    def __getitem__(self, name: str) -> Control:
        found = self._all().get(name)
        if found is None:
            known = ", ".join(self._all()) or "none"
            raise KeyError(f"page {self._page.name!r} has no control {name!r} (controls: {known})")
        return Control(name, found)

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class Control:
    """One control or layout node: ``disabled``, ``visible``, ``required`` (fields only)."""

    def __init__(self, name: str, widget: widgets.Widget) -> None:
        self.name, self.widget = name, widget

    @property
    def disabled(self) -> bool:
        """Greyed out; for a container, every control in it."""
        targets = _disableable(self.widget)
        return bool(targets) and all(w.disabled for w in targets)

    @disabled.setter
    def disabled(self, value: bool) -> None:
        for target in _disableable(self.widget):
            target.disabled = bool(value)

    @property
    def visible(self) -> bool:
        """Shown (False hides it and takes no room)."""
        if isinstance(self.widget, FieldControl):
            return bool(self.widget.visible)
        return bool(self.widget.layout.display != "none")

    @visible.setter
    def visible(self, value: bool) -> None:
        if isinstance(self.widget, FieldControl):
            self.widget.visible = bool(value)
        else:
            self.widget.layout.display = "" if value else "none"

    @property
    def required(self) -> bool:
        """Marked with a * and refused when empty (fields only)."""
        return bool(self._field().required)

    @required.setter
    def required(self, value: bool) -> None:
        field = self._field()
        field.required = bool(value)
        if not value and field.error == "is required":
            field.error = ""

    def _field(self) -> FieldControl:
        if not isinstance(self.widget, FieldControl):
            raise TypeError(f"control {self.name!r} is not a field: only fields are required")
        return self.widget


def _disableable(widget: widgets.Widget) -> list[widgets.Widget]:
    """``widget`` if it can be disabled, else the controls inside it."""
    if isinstance(widget, FieldControl) or hasattr(widget, "disabled"):
        return [widget]
    found: list[widgets.Widget] = []
    for child in getattr(widget, "children", ()):
        found += _disableable(child)
    return found


class Commands:
    """What a script may ask the app to do."""

    def __init__(self, page: PageView) -> None:
        self._page = page

    def open_page(self, page: str, *, dialog: bool = False, **params: Any) -> None:
        """Open another page of this component (``params`` such as ``id=7``)."""
        self.open_component(self._page.component, page, dialog=dialog, **params)

    def open_component(
        self, component: str, page: str, *, dialog: bool = False, **params: Any
    ) -> None:
        """Open a page of any component."""
        shell = self._page.shell
        self._page.hooks.later(lambda: shell.open_page(component, page, params, dialog=dialog))

    def navigate_back(self) -> None:
        """Back to the previous page (or close the dialog this page is in)."""
        self._page.hooks.later(self._page.shell.back)

    def close_dialog(self) -> None:
        """Close the dialog, if one is open."""
        self._page.hooks.later(self._page.shell.close_dialog)

    def refresh(self) -> None:
        """Reload the page's record (edits are dropped) and every grid and view of the app."""
        page = self._page

        def refresh() -> None:
            if page.form is not None and page.form.record_id is not None:
                page.form.reload()
            page.shell.refresh_pages()

        page.hooks.later(refresh)

    def run_workflow(
        self, name: str, *, inputs: Mapping[str, Any] | None = None, record_id: int | None = None
    ) -> dict[str, Any]:
        """Run this component's workflow ``name`` (on ``record_id``, by default the page's
        record) until it ends or waits; the run, its outcome also in the status line."""
        page = self._page
        if record_id is None and page.form is not None:
            record_id = page.form.record_id
        return page.run_workflow(name, dict(inputs or {}), record_id)

    def run_dataflow(
        self,
        name: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        record: int | Mapping[str, Any] | None = None,
    ) -> DataflowResult:
        """Run this component's dataflow ``name`` now (with ``record``, by default the form's
        values); its response in the status line, its form actions once the function returns.
        The result: ``value`` (what its ``respond`` step gave), ``actions``, ``run_id``."""
        from . import dataflow

        page = self._page
        result = dataflow.run(page, name, dict(inputs or {}), {}, record)
        dataflow.respond(page, name, result)
        page.hooks.later(lambda: dataflow.apply(page, result.actions))
        return result
