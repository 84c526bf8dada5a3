"""The pivot grid: one field down, another across, an aggregate in every cell.

Every number comes from :meth:`ComponentHandle.aggregate
<appbook.server.handle.ComponentHandle.aggregate>`, so the database does the work and the
kernel never holds the records: one query for the cells, one for the row totals, one for
the column totals and one for the grand total. Totals are aggregated, not added up from
the cells, so they are right for ``avg``, ``min`` and ``max`` too.

Headers show enum choices by their labels, in the order of the choices; other values
ascend, and records without a value make a "(none)" row or column, last. The table is one
HTML widget; :meth:`PivotGrid.table_text` gives the same cells as text.

The helpers at the end (:func:`metric_of`, :func:`group_field`, :func:`group_key`,
:func:`plain`) are shared with :mod:`.chart`. A field the component lacks raises the
engine's ``QueryError`` (as the data grid's columns do); a field of the wrong type or an
unknown aggregate raises ``ValueError`` (as :func:`.defaults.control_for` does).
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Bool, Int, observe

from ...server.definitions.models import NUMERIC_TYPES, ComponentDef, FieldDef
from ...server.errors import AppbookError
from ...server.query import field_of
from .grid_filters import caption_of, cell_text
from .live import LiveRefresh, follow
from .status import StatusLine

if TYPE_CHECKING:
    from ...server.engine import Appbook

log = logging.getLogger(__name__)

AGGREGATES = ("count", "sum", "avg", "min", "max")
UNGROUPABLE = frozenset({"json", "array"})
ENGINE_GROUP_LIMIT = 1000  # RecordStore.aggregate returns at most this many groups
METRIC = "appbook_metric"  # the metric's label in aggregate rows; cannot clash with a field
NONE_LABEL = "(none)"
CELL_STYLE = "border:1px solid #ddd;padding:2px 8px"


class PivotGrid(widgets.VBox):  # type: ignore[misc]
    """Records of one component counted (or summed, averaged...) by two fields.

    ``rows`` and ``columns`` name the fields down and across; ``aggregate`` is one of
    count, sum, avg, min, max of the number field ``value`` (``count`` without a value
    counts records). ``where`` filters the records first. The results are public:
    ``row_keys`` and ``column_keys`` (stored values, in header order), ``cells``
    (``(row key, column key) -> value``; missing combinations are absent), ``row_totals``,
    ``column_totals`` and ``grand_total``; the widgets are ``table`` and ``status``.
    """

    live = Bool(False, help="Recompute when the component's records change (event bus).")
    revision = Int(0, help="Goes up by one each time the pivot is computed.")

    def __init__(
        self,
        app: Appbook,
        component: str,
        rows: str,
        columns: str,
        *,
        aggregate: str = "count",
        value: str | None = None,
        where: Mapping[str, Any] | None = None,
        live: bool = False,
        **kwargs: Any,
    ) -> None:
        self.app, self.component = app, component
        self.handle = app[component]
        defn = self.handle.definition
        if rows == columns:
            raise ValueError(f"rows and columns must be different fields, both are {rows!r}")
        self.row_name, self.column_name = rows, columns
        self.row_field = group_field(defn, rows, "rows")
        self.column_field = group_field(defn, columns, "columns")
        self.metric = metric_of(defn, aggregate, value)
        self.where: dict[str, Any] = dict(where or {})
        self.row_keys: list[Any] = []
        self.column_keys: list[Any] = []
        self.cells: dict[tuple[Any, Any], Any] = {}
        self.row_totals: dict[Any, Any] = {}
        self.column_totals: dict[Any, Any] = {}
        self.grand_total: Any = None
        self.table = widgets.HTML()
        self.status = StatusLine()
        self._lock = threading.RLock()
        self._watcher: LiveRefresh | None = None
        super().__init__(children=[self.table, self.status], **kwargs)
        self.add_class("appbook-pivot")
        self.live = live  # subscribe before computing, so no change falls in between
        self.refresh()

    def refresh(self) -> bool:
        """Recompute every cell and total; True if the engine answered (else see ``status``)."""
        with self._lock:
            try:
                cells = self._aggregate(self.row_name, self.column_name)
                by_row = self._aggregate(self.row_name)
                by_column = self._aggregate(self.column_name)
                grand = self._aggregate()
            except Exception as exc:
                self._failed(exc)
                return False
            self.cells = {(r[self.row_name], r[self.column_name]): r[METRIC] for r in cells}
            self.row_totals = {r[self.row_name]: r[METRIC] for r in by_row}
            self.column_totals = {r[self.column_name]: r[METRIC] for r in by_column}
            self.grand_total = grand[0][METRIC] if grand else None
            self.row_keys = sorted(self.row_totals, key=group_key(self.row_field))
            self.column_keys = sorted(self.column_totals, key=group_key(self.column_field))
            self.table.value = _html(self.table_text(), bool(self.row_keys))
            cut = len(cells) >= ENGINE_GROUP_LIMIT
            self.status.show("warning" if cut else "", _CUT if cut else "")
            self.revision += 1
            return True

    def table_text(self) -> list[list[str]]:
        """The table as text: the header line, one line per row key, then the totals line."""
        rows, columns = self.row_field, self.column_field
        corner = f"{caption_of(self.row_name, rows)} \\ {caption_of(self.column_name, columns)}"
        lines = [[corner, *(header(columns, c) for c in self.column_keys), "Total"]]
        for r in self.row_keys:
            cells = [number_text(self.cells.get((r, c))) for c in self.column_keys]
            lines.append([header(rows, r), *cells, number_text(self.row_totals.get(r))])
        totals = [number_text(self.column_totals.get(c)) for c in self.column_keys]
        lines.append(["Total", *totals, number_text(self.grand_total)])
        return lines

    def close(self) -> None:
        """Stop live updates and close the pivot's widgets."""
        self.live = False
        for widget in (getattr(self, "table", None), getattr(self, "status", None)):
            if widget is not None:  # None if the configuration was refused
                widget.close()
        super().close()

    def _aggregate(self, *group_by: str) -> list[dict[str, Any]]:
        found = self.handle.aggregate(list(group_by), {METRIC: self.metric}, where=self.where)
        return [{**r, METRIC: plain(r[METRIC])} for r in found]

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, AppbookError):
            self.status.show("error", exc.message)
            return
        # Viewers never see a traceback; the maker finds it in the kernel log.
        log.exception("the pivot grid of %s could not be computed", self.component)
        self.status.show(
            "error",
            f"The pivot could not be computed ({type(exc).__name__}); "
            "the kernel log has the details.",
        )

    @observe("live")
    def _on_live(self, change: dict[str, Any]) -> None:
        self._watcher = follow(
            self._watcher, change["new"], self.app, self.component, self.refresh, self._failed
        )


_CUT = f"Only the first {ENGINE_GROUP_LIMIT:,} combinations are shown; narrow the filter."


def _html(lines: list[list[str]], has_data: bool) -> str:
    if not has_data:
        return '<div class="appbook-empty">No data to show.</div>'

    def cell(tag: str, text: str, number: bool) -> str:
        align = "right" if number else "left"
        return f'<{tag} style="{CELL_STYLE};text-align:{align}">{html.escape(text)}</{tag}>'

    out = []
    for i, line in enumerate(lines):
        body = i not in (0, len(lines) - 1)
        tags = [cell("th", line[0], False)]
        tags += [cell("td" if body else "th", t, i > 0) for t in line[1:]]
        out.append(f"<tr>{''.join(tags)}</tr>")
    return f'<table style="border-collapse:collapse">{"".join(out)}</table>'


# -- shared with the chart ------------------------------------------------------------------


def metric_of(defn: ComponentDef, aggregate: str, value: str | None, option: str = "value") -> str:
    """The engine's metric (``"count"``, ``"sum(amount)"``...) for ``aggregate`` of ``value``.

    Raises ``ValueError`` for an unknown aggregate or a non-number ``value`` of anything
    but ``count``, and ``QueryError`` for a field the component lacks; errors name the
    widget's ``option`` that holds ``value``.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r} (aggregates: {', '.join(AGGREGATES)})")
    if value is None:
        if aggregate != "count":
            raise ValueError(f"{option}: {aggregate} needs a number field to aggregate")
        return "count"
    field = field_of(defn, value, option)
    if aggregate != "count" and field.type not in NUMERIC_TYPES:
        raise ValueError(
            f"{option}: {aggregate} needs a number field, {value!r} is of type {field.type}"
        )
    return f"{aggregate}({value})"


def group_field(defn: ComponentDef, name: str, option: str) -> FieldDef:
    """The field ``name`` to group by, named by ``option`` in errors."""
    field = field_of(defn, name, option)
    if field.type in UNGROUPABLE:
        raise ValueError(f"{option}: cannot group by {name!r}, a field of type {field.type}")
    return field


def group_key(field: FieldDef) -> Callable[[Any], tuple[Any, ...]]:
    """Sort key of group values: enum choices in their order, others ascending, None last."""
    ranks = {c.value: i for i, c in enumerate(field.choices or ())}

    def key(value: Any) -> tuple[Any, ...]:
        if value is None:
            return (2,)
        if ranks:
            return (0, ranks[value]) if value in ranks else (1, str(value))
        return (0, value)

    return key


def header(field: FieldDef, value: Any) -> str:
    """A group value as a header: enum labels, ``#id`` for references, "(none)" for None."""
    return NONE_LABEL if value is None else cell_text(field, value)


def plain(value: Any) -> Any:
    """An aggregate as a Python number (PostgreSQL sums and averages are Decimals)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def number_text(value: Any) -> str:
    """A cell's text: thousands separated, at most two decimals, '' for no value."""
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    if isinstance(value, int | float):
        return f"{int(value):,}"
    return str(value)
