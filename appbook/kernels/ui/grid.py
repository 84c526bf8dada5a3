"""The data grid: one component's records, a page at a time, paged and sorted by the engine.

Built from plain ipywidgets (buttons, HTML, text boxes, date pickers) because no maintained
ipywidgets grid pages through a server-side API like ours: ipydatagrid (like qgrid before
it) takes a whole DataFrame and sorts and filters it in the browser, which at a million
records means sending a million records to every viewer. This grid holds one page; every
sort, filter and page is one :meth:`ComponentHandle.query
<appbook.server.handle.ComponentHandle.query>`.

Top to bottom: a toolbar (column chooser, "Export CSV" and its download link), a header of
sort buttons (a click goes ascending, descending, unsorted; the engine orders ties by id), a
filter row (one filter per column, by field type, see :mod:`.grid_filters`), the rows (an
"Open" button and one HTML of cells each, so a page costs one message per row), a pager and
an error line. Engine errors, such as a filter value the field refuses, go to the error
line; viewers never see a traceback.

Pages after the first are read with the engine's keyset cursor, and the grid keeps the
cursors of the pages before the current one to go back. The total is counted on the first
load, after a filter change and on :meth:`DataGrid.refresh`, not on every page.

With ``live=True`` the grid subscribes to its component's events on the engine's event bus
and refreshes the current page when records change anywhere (another kernel, an app, a
workflow), at most four times a second.
"""

from __future__ import annotations

import base64
import html
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from functools import partial
from itertools import chain
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle
from traitlets import Bool, Int, List, TraitError, Unicode, default, observe, validate

from ...server.bulk import iter_export
from ...server.errors import AppbookError, NotFound
from ...server.query import field_of
from .grid_filters import (
    MARGIN,
    ColumnFilter,
    caption_of,
    cell_html,
    column_width,
    default_columns,
    filter_for,
    grid_css,
)
from .live import LiveRefresh, follow
from .views import KeysetPaging

if TYPE_CHECKING:
    from ...server.engine import Appbook

log = logging.getLogger(__name__)

UNSORTABLE = frozenset({"json", "array"})
ARROWS = {False: " ▲", True: " ▼"}
GUTTER = 64  # width of the rows' "Open" buttons, in pixels
RowAction = Callable[[dict[str, Any]], object]


class DataGrid(KeysetPaging, widgets.VBox):  # type: ignore[misc]
    """A page of records of one component, with sorting, filters, paging and CSV export.

    ``static_filter`` (a ``where``) always applies, ANDed with the column filters;
    ``on_row_click`` gets the whole record of a clicked row. The parts are public for pages
    and tests: ``sort_buttons`` and ``filters`` (by column), ``body`` (one HBox per row: its
    "Open" button and its cells), ``chooser``, ``export_button``, ``export_link``,
    ``pager_buttons`` (first, previous, next), ``status`` and ``error_line``.
    """

    page_size = Int(25, help="Rows per page (1 to 10,000).")
    order_by = List(Unicode(), help="Sort keys in the engine's terms ('-' for descending).")
    columns = List(Unicode(), help="The visible columns in order (the column chooser's value).")
    total = Int(None, allow_none=True, help="How many records match (None until counted).")
    page = Int(0, help="The index of the current page (0 for the first).")
    error = Unicode("", help="The message of the error line ('' hides it).")
    live = Bool(False, help="Refresh when the component's records change (event bus).")
    selected_id = Int(None, allow_none=True, help="The id of the last clicked row.")
    revision = Int(0, help="Goes up by one each time rows are loaded (page, sort, refresh).")
    export_inline_limit = Int(
        5 * 1024 * 1024,
        help="Exports up to this many bytes download as a data: URL; larger ones are "
        "stored in the file store and linked.",
    )
    download_url = Unicode(
        help="Template of a stored file's download link, for large exports ('{id}' is the "
        "file id). Default: $JUPYTERHUB_SERVICE_PREFIX (or /) + 'appbook/api/files/{id}'."
    )

    def __init__(
        self,
        app: Appbook,
        component: str,
        *,
        columns: Sequence[str] | None = None,
        static_filter: Mapping[str, Any] | None = None,
        page_size: int = 25,
        order_by: str | Sequence[str] | None = None,
        on_row_click: RowAction | None = None,
        live: bool = False,
        **kwargs: Any,
    ) -> None:
        self.app, self.component = app, component
        self.handle = app[component]
        defn = self.handle.definition
        names = list(dict.fromkeys(columns)) if columns is not None else default_columns(defn)
        self.fields = {n: field_of(defn, n, "columns") for n in names}
        self.available_columns = tuple(names)
        self.captions = {n: caption_of(n, f) for n, f in self.fields.items()}
        self.static_filter: dict[str, Any] = dict(static_filter or {})
        self.on_row_click = on_row_click
        self._label_fields = self._find_label_fields()
        self._lock = threading.RLock()
        self._ready = False
        self._stack: list[str | None] = [None]  # start cursor of each page up to this one
        self._records: list[dict[str, Any]] = []
        self._next: str | None = None
        self._conditions: dict[str, Any] = {}
        self._filter_errors: dict[str, str] = {}
        self._load_error = ""
        self._labels: Mapping[str, Mapping[int, str]] = {}
        self._watcher: LiveRefresh | None = None
        self._build()
        if isinstance(order_by, str):
            order_by = [s.strip() for s in order_by.split(",") if s.strip()]
        super().__init__(
            children=[self._toolbar, self._table, self._pager, self.error_line],
            page_size=page_size,
            order_by=list(order_by or []),
            columns=names,
            **kwargs,
        )
        self.add_class("appbook-grid")
        self.add_class(self._scope)
        self._build_rows()
        self.live = live  # subscribe before the first load, so no change falls in between
        self._ready = True
        if not self._load([None], count=True):
            self._render()  # the empty grid, under the error line

    # -- the public API ---------------------------------------------------------------
    @property
    def rows(self) -> list[dict[str, Any]]:
        """The records of the current page (``id`` and the grid's columns)."""
        return [dict(r) for r in self._records]

    @property
    def where(self) -> dict[str, Any]:
        """The effective condition: the static filter AND every column filter."""
        filters = dict(self._conditions)
        if self.static_filter and filters:
            return {"and": [dict(self.static_filter), filters]}
        return dict(self.static_filter or filters)

    def first_page(self) -> bool:
        """Go to the first page."""
        return self._load([None], count=False)

    def sort(self, field: str | None, descending: bool = False) -> None:
        """Order by ``field`` (ties by id) and show the first page; ``None`` for no order."""
        self.order_by = [] if field is None else [("-" if descending else "") + field]

    def set_filter(self, field: str, value: Any) -> bool:
        """Filter column ``field`` by ``value`` (``None`` clears it) and show the first page.

        The value's shape follows the column's type: text to look for, a ``(min, max)`` range
        of numbers, a ``(from, to)`` range of dates, an enum choice, ``True``/``False``, a
        referenced id (see :mod:`.grid_filters`). A value the column refuses shows in the
        error line and changes nothing; returns whether the filter was applied.
        """
        column = self.filters.get(field)
        if column is None:
            raise KeyError(f"{field!r} is not a column of this grid ({', '.join(self.filters)})")
        with suppress(AppbookError):  # a value of the wrong shape: the condition says why
            column.show(value)
        return self._apply_filter(column, value)

    def clear_filters(self) -> bool:
        """Remove every column filter (the static filter stays) and show the first page."""
        for column in self.filters.values():
            column.show(None)
        self._conditions.clear()
        self._filter_errors.clear()
        return self._load([None], count=True)

    def click_row(self, index: int) -> dict[str, Any] | None:
        """Open row ``index`` of the page: read the whole record and pass it to the row action.

        Returns the record, or ``None`` if it no longer exists (the grid then refreshes).
        """
        if not 0 <= index < len(self._records):
            raise IndexError(f"row {index} is not on this page ({len(self._records)} rows)")
        record_id = self._records[index]["id"]
        try:
            record = self.handle.get(record_id)
        except NotFound as exc:
            self.refresh()
            self._load_error = exc.message
            self._show_errors()
            return None
        self.selected_id = record_id
        if self.on_row_click is not None:
            self.on_row_click(record)
        return record

    def export_csv(self) -> str:
        """The filtered records as CSV text: a header line, then one line per record."""
        return "".join(self._export_pieces())

    def export(self) -> str | None:
        """Make the CSV of the filtered records downloadable; returns the link's URL.

        Up to ``export_inline_limit`` bytes it is a data: URL; beyond, the CSV is streamed
        into the file store (folder ``exports``) and the link points at the file.
        """
        try:
            url = self._export_url()
        except AppbookError as exc:
            self._load_error = exc.message
            self._show_errors()
            return None
        name = html.escape(f"{self.component}.csv")
        self.export_link.value = (
            f'<a href="{html.escape(url)}" download="{name}" target="_blank">Download {name}</a>'
        )
        return url

    def close(self) -> None:
        """Stop live updates and close the grid's widgets."""
        self.live = False
        for child in _descendants(self):
            child.close()
        super().close()

    # -- loading ----------------------------------------------------------------------
    def _load(self, stack: list[str | None], *, count: bool) -> bool:
        """Read the page that starts at ``stack[-1]`` and show it; errors go to the error line."""
        with self._lock:
            try:
                page = self.handle.query(
                    where=self.where,
                    order_by=list(self.order_by),
                    limit=self.page_size,
                    cursor=stack[-1],
                    fields=[c for c in self.available_columns if c != "id"],
                    total=count,
                )
                labels = self._reference_labels(page)
            except AppbookError as exc:
                self._load_error = exc.message
                self._show_errors()
                return False
            except Exception as exc:
                # Viewers never see a traceback; the maker finds it in the kernel log.
                log.exception("the data grid of %s could not load its rows", self.component)
                self._load_error = (
                    f"The rows could not be loaded ({type(exc).__name__}); "
                    "the kernel log has the details."
                )
                self._show_errors()
                return False
            self._stack, self._records, self._next = list(stack), list(page), page.next_cursor
            if count:
                self.total = page.total
            self.page = len(stack) - 1
            self._labels, self._load_error = labels, ""
            self._show_errors()
            self._render()
            self.revision += 1
            return True

    def _filter_changed(self, column: ColumnFilter) -> None:
        self._apply_filter(column, column.read())

    def _apply_filter(self, column: ColumnFilter, value: Any) -> bool:
        try:
            condition = column.condition(value)
        except AppbookError as exc:
            self._filter_errors[column.name] = exc.message
            self._show_errors()
            return False
        self._filter_errors.pop(column.name, None)
        if condition is None:
            self._conditions.pop(column.name, None)
        else:
            self._conditions[column.name] = condition
        return self._load([None], count=True)

    def _find_label_fields(self) -> dict[str, tuple[str, str]]:
        """Reference column -> (target component, the target's first string field)."""
        found = {}
        for name, field in self.fields.items():
            if field.type != "reference" or not field.to:
                continue
            try:
                target = self.app[field.to].definition
            except AppbookError:
                continue
            strings = [k for k, f in target.stored_fields().items() if f.type == "string"]
            unique = [k for k in strings if target.fields[k].unique]
            if unique or strings:
                found[name] = (field.to, (unique or strings)[0])
        return found

    def _reference_labels(self, page: Iterable[dict[str, Any]]) -> dict[str, dict[int, str]]:
        """Labels of the referenced records on the page: one query per reference column."""
        labels: dict[str, dict[int, str]] = {}
        records = list(page)
        for name, (target, label) in self._label_fields.items():
            ids = sorted({r[name] for r in records if r.get(name) is not None})
            if not ids:
                continue
            try:
                found = self.app[target].query(
                    where={"id": {"in": ids}}, fields=[label], limit=len(ids)
                )
            except AppbookError:
                continue  # labels are a nicety: the ids still show
            labels[name] = {r["id"]: str(r[label]) for r in found if r[label] is not None}
        return labels

    def _export_pieces(self) -> Iterator[str]:
        for text, _ in iter_export(self.app, self.component, format="csv", where=self.where):
            yield text

    def _export_url(self) -> str:
        pieces = self._export_pieces()
        head: list[str] = []
        size = 0
        for text in pieces:
            head.append(text)
            size += len(text.encode())
            if size > self.export_inline_limit:
                info = self.app.files.put(
                    (t.encode() for t in chain(head, pieces)),
                    name=f"{self.component}.csv",
                    folder="exports",
                    media_type="text/csv",
                )
                return self.download_url.format(id=info.id)
        data = base64.b64encode("".join(head).encode()).decode()
        return f"data:text/csv;charset=utf-8;base64,{data}"

    # -- widgets ----------------------------------------------------------------------
    def _build(self) -> None:
        self._scope = f"appbook-grid-{uuid.uuid4().hex[:8]}"  # the CSS class of this grid
        self._widths = {n: column_width(f) for n, f in self.fields.items()}
        # One Layout per column, shared by its sort button and filter: hiding it hides both.
        self._layouts = {n: _fixed(w, overflow="hidden") for n, w in self._widths.items()}
        self.sort_buttons = {n: self._sort_button(n) for n in self.available_columns}
        self.filters = {n: filter_for(n, f, self.captions[n]) for n, f in self.fields.items()}
        for column in self.filters.values():
            column.on_change(partial(self._filter_changed, column))
        boxes = [widgets.Box([c.widget], layout=self._layouts[n]) for n, c in self.filters.items()]
        self.body = widgets.VBox()
        self._table = widgets.VBox(
            [_line([_gutter(), *self.sort_buttons.values()]), _line([_gutter(), *boxes]),
             self.body],
            layout=widgets.Layout(overflow="auto"),
        )  # fmt: skip
        self._toolbar = self._build_toolbar()
        self.pager_buttons: list[widgets.Button] = []
        for description, icon, action in (
            ("First", "angle-double-left", self.first_page),
            ("Previous", "angle-left", self.prev_page),
            ("Next", "angle-right", self.next_page),
        ):
            button = widgets.Button(description=description, icon=icon)
            button.on_click(lambda _, act=action: self._run_safely("paging", act))
            self.pager_buttons.append(button)
        self.status = widgets.HTML()
        self._pager = widgets.HBox([*self.pager_buttons, self.status])
        self.error_line = widgets.HTML(layout=widgets.Layout(display="none"))
        self.error_line.add_class("appbook-error")

    def _build_toolbar(self) -> widgets.HBox:
        self.chooser = widgets.SelectMultiple(
            options=[(self.captions[n], n) for n in self.available_columns],
            value=self.available_columns,
            rows=min(8, len(self.available_columns)),
            layout=widgets.Layout(display="none"),
        )
        self.chooser.observe(self._chosen, "value")
        toggle = widgets.ToggleButton(description="Columns", icon="columns")
        toggle.observe(self._toggle_chooser, "value")
        self.export_button = widgets.Button(description="Export CSV", icon="download")
        self.export_button.on_click(lambda _: self._run_safely("export", self.export))
        self.export_link = widgets.HTML()
        style = widgets.HTML(grid_css(self._scope, self._widths), layout=widgets.Layout(margin="0"))
        return widgets.HBox([toggle, self.chooser, self.export_button, self.export_link, style])

    def _sort_button(self, name: str) -> widgets.Button:
        button = widgets.Button(description=self.captions[name], layout=self._layouts[name])
        button.disabled = self.fields[name].type in UNSORTABLE
        button.on_click(lambda _: self._header_clicked(name))
        return button

    def _build_rows(self) -> None:
        """A pool of ``page_size`` rows, each an "Open" button and one HTML of its cells."""
        self._cells: list[widgets.HTML] = []
        rows = []
        # Every widget brings a Layout and a Style model, each synced to the browser when the
        # page opens: shared ones take a page of 25 rows from about 180 models to 60 (the
        # first paint of an app waits for all of them). Row layouts differ (shown/hidden).
        cell_layout, opener_layout = widgets.Layout(margin="0", flex="0 0 auto"), _fixed(GUTTER)
        cell_style, opener_style = HTMLStyle(), widgets.ButtonStyle()
        row_layout = widgets.Layout(align_items="center")
        for i in range(self.page_size):
            cells = widgets.HTML(layout=cell_layout, style=cell_style)
            opener = widgets.Button(description="Open", layout=opener_layout, style=opener_style)
            opener.on_click(
                lambda _, i=i: self._run_safely("row action", partial(self.click_row, i))
            )
            row = widgets.HBox([opener, cells], layout=row_layout)
            row.add_class(HIDDEN)  # shown by _render when it holds a record
            rows.append(row)
            self._cells.append(cells)
        old = self.body.children
        self.body.children = rows
        for row in old:
            for child in _descendants(row):
                child.close()
            row.close()

    def _render(self) -> None:
        shown = [
            (n, self.fields[n], self._widths[n], self._labels.get(n, {})) for n in self.columns
        ]
        for i, (row, cells) in enumerate(zip(self.body.children, self._cells, strict=True)):
            if i >= len(self._records):
                row.add_class(HIDDEN)
                continue
            record = self._records[i]
            parts = []
            for name, field, width, labels in shown:
                value = record.get(name)
                label = labels.get(value) if value is not None else None
                parts.append(cell_html(field, value, name, width, label))
            cells.value = f'<div class="abg-row">{"".join(parts)}</div>'
            row.remove_class(HIDDEN)
        first = self.page * self.page_size + 1
        last = first + len(self._records) - 1
        shown_rows = f"rows {first}\u2013{last}" if self._records else "no rows"
        of = f" of {self.total:,}" if self.total is not None else ""
        self.status.value = f"{shown_rows}{of}"
        self.pager_buttons[0].disabled = self.pager_buttons[1].disabled = len(self._stack) <= 1
        self.pager_buttons[2].disabled = self._next is None

    def _show_errors(self) -> None:
        self.error = "; ".join(m for m in (*self._filter_errors.values(), self._load_error) if m)

    def _run_safely(self, what: str, action: Callable[[], object]) -> None:
        """Run a button's action; a failure goes to the error line and the kernel log."""
        try:
            action()
        except Exception as exc:
            log.exception("the %s of the data grid of %s failed", what, self.component)
            self._load_error = (
                f"The {what} failed ({type(exc).__name__}); the kernel log has the details."
            )
            self._show_errors()

    def _header_clicked(self, name: str) -> None:
        current = self.order_by[0] if self.order_by else ""
        if current == name:
            self.sort(name, descending=True)
        elif current == f"-{name}":
            self.sort(None)
        else:
            self.sort(name)

    def _toggle_chooser(self, change: dict[str, Any]) -> None:
        self.chooser.layout.display = "" if change["new"] else "none"

    def _chosen(self, change: dict[str, Any]) -> None:
        self.columns = [n for n in self.available_columns if n in change["new"]]

    # -- trait reactions --------------------------------------------------------------
    @default("download_url")
    def _default_download_url(self) -> str:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        return prefix.rstrip("/") + "/appbook/api/files/{id}"

    @validate("columns")
    def _valid_columns(self, proposal: dict[str, Any]) -> list[str]:
        unknown = [c for c in proposal["value"] if c not in self.available_columns]
        if unknown:
            raise TraitError(f"unknown columns {unknown} (columns: {list(self.available_columns)})")
        return list(proposal["value"])

    @validate("page_size")
    def _valid_page_size(self, proposal: dict[str, Any]) -> int:
        if not 1 <= proposal["value"] <= 10_000:
            raise TraitError(f"page_size: expected 1 to 10,000 rows, got {proposal['value']}")
        return int(proposal["value"])

    @observe("columns")
    def _on_columns(self, change: dict[str, Any]) -> None:
        for name, layout in self._layouts.items():
            layout.display = "" if name in self.columns else "none"
        self.chooser.value = tuple(self.columns)
        if self._ready:
            self._render()

    @observe("order_by")
    def _on_order(self, change: dict[str, Any]) -> None:
        first = self.order_by[0] if self.order_by else ""
        for name, button in self.sort_buttons.items():
            arrow = ARROWS[first.startswith("-")] if first.lstrip("-") == name else ""
            button.description = self.captions[name] + arrow
        if self._ready:
            self._load([None], count=False)

    @observe("page_size")
    def _on_page_size(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._build_rows()
            self._load([None], count=False)

    @observe("error")
    def _on_error(self, change: dict[str, Any]) -> None:
        self.error_line.value = f'<span style="color:#b00020">{html.escape(self.error)}</span>'
        self.error_line.layout.display = "" if self.error else "none"

    def _live_failed(self, exc: Exception) -> None:
        log.exception("the data grid of %s could not subscribe to events", self.component)
        self._load_error = f"Live updates are off ({type(exc).__name__}: {exc})."
        self._show_errors()

    @observe("live")
    def _on_live(self, change: dict[str, Any]) -> None:
        self._watcher = follow(
            self._watcher, change["new"], self.app, self.component, self.refresh, self._live_failed
        )


HIDDEN = "abg-hidden"  # rows without a record (see grid_css)


def _fixed(width: int, **more: str) -> widgets.Layout:
    """A box ``width`` pixels wide with the margins of :func:`.grid_filters.grid_css`."""
    return widgets.Layout(
        width=f"{width}px", min_width=f"{width}px", flex="0 0 auto", margin=f"0 {MARGIN}px", **more
    )


def _line(children: list[widgets.Widget]) -> widgets.HBox:
    return widgets.HBox(children, layout=widgets.Layout(align_items="center"))


def _gutter() -> widgets.HTML:
    """Space above and below the rows' "Open" buttons."""
    return widgets.HTML(layout=_fixed(GUTTER))


def _descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    out = []
    for child in getattr(widget, "children", ()):
        out.extend([*_descendants(child), child])
    return out
