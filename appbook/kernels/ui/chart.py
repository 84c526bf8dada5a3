"""Charts of a component's records: bar, line and pie, drawn with bqplot.

Why bqplot: it is a maintained ipywidgets library (Jupyter-widgets 8, its own
``bqplot`` and ``bqscales`` packages) whose marks are ordinary widgets with synced traits,
so a chart updates in place when its data changes (a live refresh sends new arrays, not a
new picture) and tests read the plotted values straight off the mark. Its wheel ships a
prebuilt JupyterLab extension, which Voilà serves as it is: nothing to build, no internet
at view time. plotly's ``FigureWidget`` needs anywidget and a large bundle; matplotlib's
ipympl redraws images and cannot be read back; altair/vega need a renderer per frontend.

Two ways to get the data:

* records: ``Chart(app, "sales", x="month", y="amount")`` plots one point per record
  (``where``, ``order_by``, up to ``limit`` records), ordered by ``x`` unless told;
* an aggregate: ``Chart(app, "orders", x="status", aggregate="sum", y="amount")`` plots
  one point per value of ``x``, computed by the engine (``count`` needs no ``y``).

Enum values show their labels (in the order of the choices), references ``#id``, and
records without an ``x`` value a "(none)" bar or slice. Points without a ``y`` value are
left out. No data draws an empty chart and says so in the status line. A field the
component lacks raises the engine's ``QueryError`` (as the data grid's columns do); a
field of the wrong type, an unknown kind or aggregate raises ``ValueError`` (as
:func:`.defaults.control_for` does). Engine errors while loading go to the status line.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Bool, Int, observe

from ...server.definitions.models import NUMERIC_TYPES, FieldDef
from ...server.errors import AppbookError
from ...server.query import field_of
from .grid_filters import caption_of
from .live import LiveRefresh, follow
from .pivot import METRIC, group_field, group_key, header, metric_of, plain
from .status import StatusLine


def _bqplot() -> Any:
    """bqplot, imported on first use: with pandas it costs 0.35 s, which every app kernel
    would otherwise pay at start whether it shows a chart or not."""
    with warnings.catch_warnings():
        # bqscales 0.3 declares one trait the pre-4.1 traitlets way, which warns on import.
        warnings.filterwarnings(
            "ignore", "metadata .* set from the constructor", DeprecationWarning
        )
        import bqplot  # type: ignore[import-untyped]
    return bqplot


if TYPE_CHECKING:
    from ...server.engine import Appbook

log = logging.getLogger(__name__)

KINDS = ("bar", "line", "pie")
AGGREGATE_NAMES = {"count": "Count", "sum": "Sum", "avg": "Average", "min": "Minimum",
                   "max": "Maximum"}  # fmt: skip
Point = tuple[Any, float]


class Chart(widgets.VBox):  # type: ignore[misc]
    """A bar, line or pie chart of one component's records, or of an aggregate of them.

    ``labels`` (text of each x) and ``values`` (the numbers plotted) hold what is drawn;
    the widgets are ``figure`` (a ``bqplot.Figure``), ``mark`` (its ``Bars``, ``Lines`` or
    ``Pie``) and ``status``. Line charts over a number ``x`` use a linear x axis; every
    other chart places its x values side by side, in order.
    """

    live = Bool(False, help="Redraw when the component's records change (event bus).")
    revision = Int(0, help="Goes up by one each time the data is loaded.")

    def __init__(
        self,
        app: Appbook,
        component: str,
        x: str,
        y: str | None = None,
        *,
        kind: str = "bar",
        aggregate: str | None = None,
        where: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int = 1000,
        title: str | None = None,
        live: bool = False,
        **kwargs: Any,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown chart kind {kind!r} (kinds: {', '.join(KINDS)})")
        self.app, self.component, self.kind = app, component, kind
        self.handle = app[component]
        self.x, self.y, self.aggregate = x, y, aggregate
        self.x_field, self.y_field, self.metric = self._fields(order_by)
        self.where: dict[str, Any] = dict(where or {})
        self.order_by = order_by or [x]
        self.limit = limit
        self.labels: list[str] = []
        self.values: list[float] = []
        self._numeric_x = kind == "line" and self.x_field.type in NUMERIC_TYPES
        if title is None:
            title = f"{self._y_caption()} by {caption_of(x, self.x_field)}"
        self.figure, self.mark = self._build(title)
        self.status = StatusLine()
        tip, axes = self.mark.tooltip, self.figure.axes
        self._parts = [*self.mark.scales.values(), tip, self.mark, *axes, self.figure, self.status]
        self._lock = threading.RLock()
        self._watcher: LiveRefresh | None = None
        super().__init__(children=[self.figure, self.status], **kwargs)
        self.add_class("appbook-chart")
        self.live = live  # subscribe before loading, so no change falls in between
        self.refresh()

    def refresh(self) -> bool:
        """Load the data again and redraw; True if the engine answered (else see ``status``)."""
        with self._lock:
            try:
                points = self._points()
            except Exception as exc:
                self._failed(exc)
                return False
            self._draw(points)
            self.status.show("info" if not points else "", "" if points else "No data to show.")
            self.revision += 1
            return True

    def close(self) -> None:
        """Stop live updates and close the chart's widgets."""
        self.live = False
        for widget in getattr(self, "_parts", ()):  # none if the configuration was refused
            widget.close()
        super().close()

    # -- data -------------------------------------------------------------------------
    def _fields(self, order_by: object) -> tuple[FieldDef, FieldDef | None, str]:
        """The x and y fields and the engine's metric ('' for records); checks them all."""
        defn = self.handle.definition
        if self.aggregate is not None:
            if order_by:
                raise ValueError("order_by is for charts of records; aggregates follow x")
            x_field = group_field(defn, self.x, "x")
            metric = metric_of(defn, self.aggregate, self.y, "y")
            return x_field, None if self.y is None else field_of(defn, self.y, "y"), metric
        x_field = field_of(defn, self.x, "x")
        if self.y is None:
            raise ValueError("y: a chart of records needs a number field (or an aggregate)")
        y_field = field_of(defn, self.y, "y")
        if y_field.type not in NUMERIC_TYPES:
            raise ValueError(
                f"y: a chart needs a number field, {self.y!r} is of type {y_field.type}"
            )
        return x_field, y_field, ""

    def _points(self) -> list[Point]:
        if self.aggregate is None:
            assert self.y is not None
            found = self.handle.query(
                self.where,
                order_by=self.order_by,
                limit=self.limit,
                fields=list(dict.fromkeys([self.x, self.y])),
            )
            pairs = [(r[self.x], r[self.y]) for r in found]
        else:
            groups = self.handle.aggregate([self.x], {METRIC: self.metric}, where=self.where)
            order = group_key(self.x_field)
            pairs = sorted(
                ((r[self.x], plain(r[METRIC])) for r in groups), key=lambda p: order(p[0])
            )
        return [
            (x, float(y)) for x, y in pairs if y is not None and not (self._numeric_x and x is None)
        ]

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, AppbookError):
            self.status.show("error", exc.message)
            return
        # Viewers never see a traceback; the maker finds it in the kernel log.
        log.exception("the chart of %s could not load its data", self.component)
        self.status.show(
            "error",
            f"The chart could not be loaded ({type(exc).__name__}); "
            "the kernel log has the details.",
        )

    # -- drawing ----------------------------------------------------------------------
    def _y_caption(self) -> str:
        """What the y axis measures: "Amount", "Count", "Sum of Amount"."""
        y = caption_of(self.y, self.y_field) if self.y and self.y_field else ""
        if self.aggregate is None:
            return y
        what = AGGREGATE_NAMES[self.aggregate]
        return f"{what} of {y}" if y else what

    def _build(self, title: str) -> tuple[Any, Any]:
        bq = _bqplot()
        if self.kind == "pie":
            tip = bq.Tooltip(fields=["label", "size"])
            pie = bq.Pie(sizes=[], labels=[], display_labels="outside", tooltip=tip)
            return bq.Figure(marks=[pie], title=title), pie
        x_scale = bq.LinearScale() if self._numeric_x else bq.OrdinalScale()
        scales = {"x": x_scale, "y": bq.LinearScale()}
        tip = bq.Tooltip(fields=["x", "y"])
        if self.kind == "bar":
            mark = bq.Bars(x=[], y=[], scales=scales, tooltip=tip)
        else:
            mark = bq.Lines(x=[], y=[], scales=scales, marker="circle", tooltip=tip)
        axes = [
            bq.Axis(scale=x_scale, label=caption_of(self.x, self.x_field)),
            bq.Axis(scale=scales["y"], side="left", label=self._y_caption()),
        ]
        return bq.Figure(marks=[mark], axes=axes, title=title), mark

    def _draw(self, points: list[Point]) -> None:
        labels = [header(self.x_field, x) for x, _ in points]
        values = [y for _, y in points]
        with self.mark.hold_sync():
            if self.kind == "pie":
                self.mark.labels, self.mark.sizes = labels, values
            else:
                self.mark.x = [x for x, _ in points] if self._numeric_x else labels
                self.mark.y = values
        self.labels, self.values = labels, values

    @observe("live")
    def _on_live(self, change: dict[str, Any]) -> None:
        self._watcher = follow(
            self._watcher, change["new"], self.app, self.component, self.refresh, self._failed
        )
