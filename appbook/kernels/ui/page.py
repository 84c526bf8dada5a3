"""Render a component's page definition as widgets, and run its actions.

:class:`AppView` is the app shell: a stack of pages (``open_page`` pushes, ``back`` pops) and
an optional dialog over the top page. Each :class:`PageView` builds its layout tree: field
nodes become controls bound to one :class:`RecordForm`, grid nodes a :class:`DataGrid`,
buttons run actions. Action failures show in the page's status line; viewers never see a
traceback. Every page opens through :meth:`AppView.open_page`, which applies the page's
``roles:`` (:mod:`appbook.server.access`) for the user the app acts as: a page they may not
open is not built, and the status line says which role it needs. A component's script
(``<component>.py``, see :mod:`.scripts`) hooks into its pages through
:class:`~.hooks.PageHooks`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from ...server import access
from ...server.definitions.pages import Action, Node, PageDef
from ...server.engine import Appbook
from ...server.errors import Forbidden, NotFound
from .applog import is_maker
from .base import FieldControl
from .form import RecordForm
from .hooks import PageHooks
from .scripts import Scripts
from .status import StatusLine

DIALOG_CSS = """
.appbook-backdrop { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.35); z-index: 1000; }
.appbook-dialog { position: fixed; top: 8vh; left: 50%; transform: translateX(-50%);
  z-index: 1001; background: #fff; padding: 16px 20px; border-radius: 6px;
  box-shadow: 0 10px 30px rgba(0, 0, 0, 0.3); max-width: 92vw; max-height: 84vh;
  overflow: auto; }
"""


class PageView(widgets.VBox):  # type: ignore[misc]
    """One rendered page of a component."""

    def __init__(
        self, shell: AppView, component: str, name: str, params: Mapping[str, Any]
    ) -> None:
        self.shell, self.component, self.name = shell, component, name
        self.params = dict(params)
        definition = shell.app[component].definition
        pages = definition.pages or {}
        if name not in pages:
            known = ", ".join(pages) or "none"
            raise NotFound(f"component {component!r} has no page {name!r} (pages: {known})")
        self.page: PageDef = pages[name]
        self.controls: dict[str, FieldControl] = {}
        self.named: dict[str, widgets.Widget] = {}  # nodes with a name: (context.controls)
        self.hooks = PageHooks(self)
        self.grids: list[Any] = []
        self.views: list[Any] = []
        self.status = StatusLine()
        self._before: list[tuple[str, str]] = []  # what the status lines said as an action began
        body = [self._node(node) for node in self.page.layout]
        self.form = (
            RecordForm(shell.app, component, self.controls, live=shell.live)
            if self.controls
            else None
        )
        title = widgets.HTML(f"<h2>{html.escape(self.page.title or name)}</h2>")
        children = [title, *body, self.status]
        if self.form is not None:
            self.form.before_save = self.hooks.before_save
            self.form.on_saved.append(self.hooks.after_save)
            children.insert(-1, self.form)
            record_id = self.params.get("id")
            if record_id not in (None, ""):
                self.form.load(int(record_id))
        super().__init__(children=children)
        self.add_class("appbook-page")

    # -- building ---------------------------------------------------------------------
    def _node(self, node: Node) -> widgets.Widget:
        widget = getattr(self, f"_build_{node.kind}")(node)
        if node.css_class:
            widget.add_class(node.css_class)
        if node.width:
            widget.layout.width = node.width
        if not node.visible:
            widget.layout.display = "none"
        if node.name:
            self.named[node.name] = widget
        return widget

    def _build_field(self, node: Node) -> widgets.Widget:
        from .defaults import control_for

        field = self.shell.app[self.component].definition.fields[node.field or ""]
        props: dict[str, Any] = {"disabled": node.disabled, "placeholder": node.placeholder or ""}
        if node.title:
            props["caption"] = node.title
        if node.required is not None:
            props["required"] = node.required
        control = control_for(
            field, name=node.field or "", kind=node.control, app=self.shell.app, **props
        )
        self.controls[node.field or ""] = control
        control.observe(self.hooks.changed, "value")
        # A stable hook for stylesheets and browser tests: .appbook-field-<name>.
        control.add_class(f"appbook-field-{node.field}")
        return control

    def _build_grid(self, node: Node) -> widgets.Widget:
        from .grid import DataGrid

        spec = node.grid
        assert spec is not None
        click = (lambda row: self.run(spec.on_row_click, row=row)) if spec.on_row_click else None
        grid = DataGrid(
            self.shell.app,
            self.component,
            columns=spec.columns,
            static_filter=spec.filter,
            page_size=spec.page_size,
            order_by=spec.order_by,
            on_row_click=click,
            live=self.shell.live and spec.live,
        )
        self.grids.append(grid)
        return grid

    def _build_chart(self, node: Node) -> widgets.Widget:
        from .chart import Chart

        spec = node.chart
        assert spec is not None
        return self._view(
            Chart(
                self.shell.app,
                self.component,
                spec.x,
                spec.y,
                kind=spec.kind,
                aggregate=spec.aggregate,
                where=spec.filter,
                order_by=spec.order_by,
                limit=spec.limit,
                title=node.title,
                live=self.shell.live and spec.live,
            )
        )

    def _build_pivot(self, node: Node) -> widgets.Widget:
        from .pivot import PivotGrid

        spec = node.pivot
        assert spec is not None
        return self._view(
            PivotGrid(
                self.shell.app,
                self.component,
                spec.rows,
                spec.columns,
                aggregate=spec.aggregate,
                value=spec.value,
                where=spec.filter,
                live=self.shell.live and spec.live,
            )
        )

    def _build_list_view(self, node: Node) -> widgets.Widget:
        from .listview import ListView

        spec = node.list_view
        assert spec is not None
        action = spec.on_select
        return self._view(
            ListView(
                self.shell.app,
                self.component,
                spec.title,
                spec.subtitle,
                where=spec.filter,
                order_by=spec.order_by,
                page_size=spec.page_size,
                on_select=(lambda record: self.run(action, row=record)) if action else None,
                live=self.shell.live and spec.live,
            )
        )

    def _build_tree(self, node: Node) -> widgets.Widget:
        from .tree import TreeView

        spec = node.tree
        assert spec is not None
        action = spec.on_select
        return self._view(
            TreeView(
                self.shell.app,
                self.component,
                spec.parent,
                spec.label,
                where=spec.filter,
                order_by=spec.order_by,
                on_select=(lambda record: self.run(action, row=record)) if action else None,
                live=self.shell.live and spec.live,
            )
        )

    def _view(self, view: Any) -> widgets.Widget:
        """Keep a data view (chart, pivot, list, tree) to refresh after saves, close with the
        page."""
        self.views.append(view)
        return view

    def _build_button(self, node: Node) -> widgets.Widget:
        spec = node.button
        assert spec is not None
        button = widgets.Button(
            description=spec.text, button_style=spec.style, disabled=node.disabled
        )
        button.on_click(lambda _: self.run(spec.action))
        return button

    def _build_panel(self, node: Node) -> widgets.Widget:
        spec = node.panel
        assert spec is not None
        children = [self._node(child) for child in spec.children]
        if spec.direction == "horizontal":
            return widgets.HBox(children)
        if spec.direction == "grid":
            columns = spec.columns or 2
            return widgets.GridBox(
                children,
                layout=widgets.Layout(
                    grid_template_columns=f"repeat({columns}, 1fr)", grid_gap="8px 16px"
                ),
            )
        return widgets.VBox(children)

    def _build_tabs(self, node: Node) -> widgets.Widget:
        tabs = node.tabs or {}
        tab = widgets.Tab(
            children=[widgets.VBox([self._node(c) for c in children]) for children in tabs.values()]
        )
        for i, title in enumerate(tabs):
            tab.set_title(i, title)
        return tab

    def _build_label(self, node: Node) -> widgets.Widget:
        return widgets.Label(node.label or "")

    def _build_html(self, node: Node) -> widgets.Widget:
        return widgets.HTML(node.html or "")  # trusted: written by the app maker

    def _build_link(self, node: Node) -> widgets.Widget:
        link = node.link
        assert link is not None
        url, text = html.escape(link.url), html.escape(link.text)
        return widgets.HTML(f'<a href="{url}" target="_blank" rel="noopener noreferrer">{text}</a>')

    def _build_image(self, node: Node) -> widgets.Widget:
        return widgets.HTML(f"<em>{html.escape(node.image or '')}</em>")

    # -- actions ----------------------------------------------------------------------
    def run(self, action: Any, *, row: Mapping[str, Any] | None = None) -> None:
        """Run a button or row action; failures become a status message."""
        self._before = self._said()
        try:
            self._run(action, row or {})
        except Exception as exc:  # a viewer must never see a traceback
            self.shell.log_error(exc)
            self.status.show(
                "error",
                f"That did not work: {getattr(exc, 'message', None) or type(exc).__name__}.",
            )

    def _run(self, action: Any, row: Mapping[str, Any]) -> bool:
        """Run one action or a list of them in order; False when one did not succeed (the
        form refused to save, say), which stops the list."""
        if isinstance(action, list):
            return all(self._run(step, row) for step in action)
        if action == "save" and self.form is not None:
            form = self.form
            if form.record_id is not None and not form.changes():
                # Nothing to save is no reason to stop "save, then back", but what the
                # page requires still holds (a required field left empty stops it).
                checked = [control.check() for control in form.controls.values()]  # all show
                return all(checked)
            if form.save() is None:
                return False
            self.shell.refresh_pages()
        elif action == "delete" and self.form is not None:
            if not self.form.delete():
                return False
            self.shell.refresh_pages()
            self._leave(self.shell.back)
        elif action == "back":
            self._leave(self.shell.back)
        elif action == "close":
            self._leave(self.shell.close_dialog)
        elif isinstance(action, Action):
            params = {k: self._param(v, row) for k, v in action.params.items()}
            if action.set is not None:
                if self.form is None:
                    raise NotFound(f"page {self.name!r} has no form to set values in")
                for name, value in action.set.items():
                    self.form.set_value(name, self._param(value, row))
            elif action.open_page or action.open:
                # A page the user may not open stops the list (its status line says why).
                component, page = (
                    (action.open.component, action.open.page)
                    if action.open
                    else (self.component, action.open_page or "")
                )
                opened = self.shell.open_page(component, page, params, dialog=action.dialog)
                return opened is not None
            elif action.run_workflow:
                return self._run_workflow(action.run_workflow, params, row)
            elif action.call:
                return self.hooks.call(action.call, row)
            elif action.run_dataflow:
                return self._run_dataflow(action.run_dataflow, params, row)
        return True

    def _said(self) -> list[tuple[str, str]]:
        """What this page's status lines say now (the page's, then its form's)."""
        lines = [self.status, *([self.form.status] if self.form is not None else [])]
        return [(line.kind, line.text) for line in lines]

    def _leave(self, go: Callable[[], None]) -> None:
        """Leave this page (``go``: back, or close the dialog), carrying what this action
        said to the page shown next: "Sign the contract, then back" must not show its
        outcome on a page that closes at once."""
        before = self._before
        fresh = [
            said
            for i, said in enumerate(self._said())
            if said[1]
            and said[0] in ("ok", "info", "warning")
            and (i >= len(before) or said != before[i])
        ]
        go()
        if fresh:
            self.shell.notice(*fresh[0])

    def _run_dataflow(self, name: str, inputs: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
        """Run dataflow ``name`` on the form's values (checked first, as a save checks them)
        or the row; its response in the status line, then its form actions (see
        :mod:`.dataflow`). False when the form's controls refused."""
        from . import dataflow

        if not dataflow.form_ready(self, row):
            return False
        result = dataflow.run(self, name, inputs, row)
        dataflow.respond(self, name, result)
        said = (self.status.kind, self.status.text)
        dataflow.apply(self, result.actions)
        top = self.shell.top
        if top is not None and top is not self:  # it opened a page: say it there
            self.shell.notice(*said)
        return True

    def _run_workflow(self, name: str, inputs: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
        """Run workflow ``name`` of this component, on the row's or the form's record, as
        the app's user, until it ends or waits; its outcome in the status line."""
        record_id = row.get("id") or (self.form.record_id if self.form is not None else None)
        return self.run_workflow(name, inputs, record_id)["status"] in ("succeeded", "waiting")

    def run_workflow(
        self, name: str, inputs: Mapping[str, Any], record_id: int | None
    ) -> dict[str, Any]:
        """Run this component's workflow ``name`` on ``record_id`` as the app's user until it
        ends or waits; the run, its outcome in the status line."""
        handle = self.shell.app[self.component]
        run = handle.run_workflow(name, record_id=record_id, inputs=dict(inputs))
        ok = run["status"] in ("succeeded", "waiting")
        detail = f": {run['error']}" if run["status"] == "failed" and run["error"] else ""
        self.status.show("ok" if ok else "error", f"Workflow {name}: {run['status']}{detail}.")
        if ok:
            self.shell.refresh_pages()  # what the run changed shows at once
        return run

    def _param(self, value: Any, row: Mapping[str, Any]) -> Any:
        if not isinstance(value, str) or "." not in value:
            return value
        source, _, key = value.partition(".")
        if source == "row":
            return row.get(key)
        if source == "record" and self.form is not None:
            return self.form.record_id if key == "id" else self.form.values().get(key)
        if source == "params":
            return self.params.get(key)
        return value

    def close(self) -> None:
        """Stop live updates of this page's form and grids."""
        form = getattr(self, "form", None)  # close() also runs from __del__ of a half-built page
        if hasattr(self, "hooks"):
            self.hooks.close()
        if form is not None:
            form.close()
        for view in [*getattr(self, "grids", []), *getattr(self, "views", [])]:
            view.close()
        super().close()


class AppView(widgets.VBox):  # type: ignore[misc]
    """The app shell: a stack of pages and a dialog layer."""

    def __init__(
        self,
        app: Appbook,
        component: str,
        page: str,
        params: Mapping[str, Any] | None = None,
        *,
        live: bool = True,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.app, self.live = app, live
        self.stack: list[PageView] = []
        self.dialog: PageView | None = None
        self.on_dialog_close: Callable[[], None] | None = None  # once, when the dialog closes
        self.scripts = Scripts(app)  # component scripts of this app session, and the Log
        self._on_error = on_error
        self._dialog_box = widgets.VBox(layout=widgets.Layout(display="none"))
        self._dialog_box.add_class("appbook-dialog")
        # The dimmed layer under a dialog: the page behind cannot be clicked while it is open.
        self._backdrop = widgets.HTML(layout=widgets.Layout(display="none"))
        self._backdrop.add_class("appbook-backdrop")
        self._page_box = widgets.VBox()
        style = widgets.HTML(f"<style>{DIALOG_CSS}</style>", layout=widgets.Layout(margin="0"))
        children = [style, self._page_box, self.scripts.log, self._backdrop, self._dialog_box]
        super().__init__(children=children)
        self.add_class("appbook-app")
        self.refused: str | None = None  # why the home page did not open, if it did not
        self._home = (component, page, dict(params or {}))
        # The first page is the app's home: opened as a page even if declared as a dialog
        # (a dialog needs a page under it, and there is none yet).
        self.open_page(component, page, params or {}, home=True)

    @property
    def current(self) -> PageView:
        """The page on top (under any dialog); Forbidden when the app's first page was
        refused to its user (``refused`` says why), so no page is open."""
        if not self.stack:
            raise Forbidden(self.refused or "no page is open")
        return self.stack[-1]

    @property
    def top(self) -> PageView | None:
        """What the user looks at: the dialog, else the page on top (None if none is open)."""
        return self.dialog or (self.stack[-1] if self.stack else None)

    def refusal(self, component: str, page: str) -> str | None:
        """Why the app's user may not open ``component``'s ``page`` (its ``roles:``), or
        None. An unknown page is not refused here: opening it says it does not exist."""
        definition = self.app[component].definition.pages or {}
        found = definition.get(page)
        if found is None:
            return None
        return access.check(self.app.users, self.app.actor, page, found)

    def open_page(
        self,
        component: str,
        page: str,
        params: Mapping[str, Any],
        *,
        dialog: bool = False,
        home: bool = False,
    ) -> PageView | None:
        """Open a page (pushed on the stack, or as the dialog); None, and the reason in the
        status line, when the app's user may not open it."""
        refused = self.refusal(component, page)
        if refused is not None:
            self._refuse(refused, home=home)
            return None
        view = PageView(self, component, page, params)
        if not home and (dialog or view.page.dialog):
            self.close_dialog()
            self.dialog = view
            close = widgets.Button(description="Close", icon="times")
            close.on_click(lambda _: self.close_dialog())
            self._dialog_box.children = [view, close]
            self._dialog_box.layout.display = ""
            self._backdrop.layout.display = ""
        else:
            self.stack.append(view)
            self._page_box.children = [view]
        self.scripts.log.show_to(is_maker(self.app))  # the user may be bound since (preheating)
        view.hooks.start()
        return view

    def _refuse(self, message: str, *, home: bool) -> None:
        """Say ``message`` where the user looks: the status line of the dialog or page on
        top; for a home page that did not open, a status line in its place."""
        if not home and self.top is not None:
            self.notice("error", f"{message}.")
            return
        self.refused = message
        status = StatusLine()
        status.add_class("appbook-refused")
        status.show("error", f"{message}.")
        self._page_box.children = [status]

    def back(self) -> None:
        """Return to the previous page (or close the dialog)."""
        if self.dialog is not None:
            self.close_dialog()
            return
        if len(self.stack) > 1:
            self.stack.pop().close()
            self._page_box.children = [self.current]
            self.refresh_grids()

    def notice(self, kind: str, text: str) -> None:
        """Show ``text`` in the status line of the dialog or page on top."""
        top = self.top
        if top is not None:
            top.status.show(kind, text)

    def close_dialog(self) -> None:
        """Close the dialog, if any."""
        if self.dialog is not None:
            self.dialog.close()
            self.dialog = None
        self._dialog_box.children = []
        self._dialog_box.layout.display = "none"
        self._backdrop.layout.display = "none"
        closed, self.on_dialog_close = self.on_dialog_close, None
        if closed is not None:
            closed()

    def refresh_grids(self) -> None:
        """Reload every grid of the open pages (after a save or delete)."""
        for view in self.stack:
            for grid in [*view.grids, *view.views]:
                grid.refresh()

    def refresh_pages(self) -> None:
        """After a save or delete: reload the grids, and the forms of pages under the top one
        that show a record and hold no edits (a dialog that changed the record beneath it
        must not leave that page with an old version). Live pages also follow events; this
        covers pages shown with ``live=False``."""
        self.refresh_grids()
        top = self.top
        for view in self.stack:
            form = view.form
            if view is not top and form is not None and form.record_id and not form.dirty:
                form.reload()

    def user_bound(self) -> None:
        """The signed-in user is known now (a preheated app's first page was built acting as
        nobody yet): show the Log if they are a maker, and run the open pages' ``on_load``
        again as them. The home page's ``roles:`` hold for them, not for nobody: a home
        refused to nobody opens now if they may open it, and one they may not open closes."""
        self.scripts.log.show_to(is_maker(self.app))
        component, page, params = self._home
        refused = self.refusal(component, page)
        if refused is not None:
            self.close_dialog()
            while self.stack:
                self.stack.pop().close()
            self._refuse(refused, home=True)
            return
        if not self.stack:
            self.refused = None
            self.open_page(component, page, params, home=True)
            return
        for view in [*self.stack, *([self.dialog] if self.dialog is not None else [])]:
            view.hooks.loaded()

    def log_error(self, exc: BaseException) -> None:
        """Report an unexpected error to the maker (log), never to the viewer."""
        if self._on_error is not None:
            self._on_error(exc)

    def close(self) -> None:
        """Close every page."""
        if hasattr(self, "stack"):
            self.on_dialog_close = None
            self.close_dialog()
            for view in self.stack:
                view.close()
            self.scripts.close()
        super().close()


def show(
    component: str, page: str, *, app: Appbook | None = None, live: bool = True, **params: Any
) -> AppView:
    """Render ``component``'s ``page`` (``show("invoices", page="all")``) in any notebook."""
    if app is None:
        from ..client import connect

        app = connect()
    return AppView(app, component, page, params, live=live)
