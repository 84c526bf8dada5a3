"""The columns of the data grid: per field type, a filter and a way to show values.

Each filter shows its widgets in the grid's filter row and turns a value into one condition
of the engine's query language (:mod:`appbook.server.query`):

=============================  ======================  =====================================
field type                     widgets                 value → condition
=============================  ======================  =====================================
string, text, email, uri       Text "contains"         ``"ac"`` → ``{"contains": "ac"}``
integer, number, time          min and max Text        ``(1, 5)`` → ``{"ge": 1, "le": 5}``
date, datetime                 from and to DatePicker  ``(d1, d2)`` → from ``d1`` to ``d2``
enum                           Dropdown any + choices  ``1`` → ``1`` (equality)
boolean                        Dropdown any/yes/no     ``True`` → ``True``
reference                      Text (an id)            ``7`` → ``7``
json, array, file              none                    none
=============================  ======================  =====================================

A range may leave either end open (``None`` or ``""``). A date range on a datetime field
covers whole days in UTC: from the start of the first day to the end of the last. Values
typed as text are read by the engine's own field rules
(:func:`appbook.server.validation.coerce`); a value they refuse raises :class:`QueryError`
naming the column, which the grid shows in its error line.

Cells show enums by label, booleans as ✓/✗, references as ``#id`` and a label, date-times
in ISO 8601 without microseconds, and long text cut to one line (see :func:`cell_text`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import ipywidgets as widgets

from ...server.definitions.models import NUMERIC_TYPES, TEXT_TYPES, ComponentDef, FieldDef
from ...server.errors import QueryError
from ...server.validation import Invalid, coerce


class ColumnFilter:
    """A column without a filter; subclasses add widgets and a condition."""

    def __init__(self, name: str, field: FieldDef, caption: str) -> None:
        self.name, self.field, self.caption = name, field, caption
        self._listeners: list[Callable[[], object]] = []
        self._quiet = False
        self.widget = self.build()

    # -- what subclasses provide ------------------------------------------------------
    def build(self) -> widgets.DOMWidget:
        """The widget shown in the filter row."""
        return widgets.HTML("")

    def read(self) -> Any:
        """The value the widgets hold (``None`` when they hold nothing)."""
        return None

    def write(self, value: Any) -> None:
        """Show ``value`` in the widgets."""

    def condition(self, value: Any) -> Any:
        """The where condition of ``value`` (``None``: no condition); raises QueryError."""
        if value is not None:
            raise QueryError(f"{self.caption}: {self.field.type} columns cannot be filtered")
        return None

    # -- shared behaviour -------------------------------------------------------------
    def on_change(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the user changes the widgets (not on :meth:`show`)."""
        self._listeners.append(callback)

    def show(self, value: Any) -> None:
        """Write ``value`` into the widgets without notifying the listeners."""
        self._quiet = True
        try:
            self.write(value)
        finally:
            self._quiet = False

    def _changed(self, change: object = None) -> None:
        if not self._quiet:
            for callback in self._listeners:
                callback()

    def _coerce(self, raw: Any, what: str) -> Any:
        """``raw`` in the field's stored form; ``None`` for empty; QueryError if refused."""
        # Like the engine's query values: bound by the field's type, not its min/max rules.
        loose = FieldDef(type=self.field.type, choices=self.field.choices, to=self.field.to)
        try:
            return coerce(loose, raw, from_text=isinstance(raw, str))
        except Invalid as exc:
            raise QueryError(f"{self.caption} {what}: {exc}") from None


def _text_box(placeholder: str, width: str = "100%") -> widgets.Text:
    return widgets.Text(
        placeholder=placeholder, continuous_update=False, layout=widgets.Layout(width=width)
    )


class TextFilter(ColumnFilter):
    """Case-insensitive ``contains`` on a text column."""

    placeholder = "contains"

    def build(self) -> widgets.DOMWidget:
        self.box = _text_box(self.placeholder)
        self.box.observe(self._changed, "value")
        return self.box

    def read(self) -> Any:
        return self.box.value.strip() or None

    def write(self, value: Any) -> None:
        self.box.value = "" if value is None else str(value)

    def condition(self, value: Any) -> Any:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise QueryError(f"{self.caption}: expected text to look for, got {value!r}")
        return {"contains": value}


class RangeFilter(ColumnFilter):
    """``min ≤ value ≤ max`` on a number, integer or time column, either end open."""

    def build(self) -> widgets.DOMWidget:
        self.low, self.high = _text_box("min", "50%"), _text_box("max", "50%")
        for box in (self.low, self.high):
            box.observe(self._changed, "value")
        return widgets.HBox([self.low, self.high], layout=widgets.Layout(width="100%"))

    def read(self) -> Any:
        low, high = self.low.value.strip(), self.high.value.strip()
        return (low or None, high or None) if low or high else None

    def write(self, value: Any) -> None:
        low, high = _pair(value, self.caption)
        self.low.value = "" if low is None else str(low)
        self.high.value = "" if high is None else str(high)

    def condition(self, value: Any) -> Any:
        low, high = _pair(value, self.caption)
        parts = {"ge": self._coerce(low, "min"), "le": self._coerce(high, "max")}
        return {op: v for op, v in parts.items() if v is not None} or None


class DateRangeFilter(ColumnFilter):
    """From one day to another on a date or datetime column, either end open."""

    def build(self) -> widgets.DOMWidget:
        self.low = widgets.DatePicker(layout=widgets.Layout(width="50%"))
        self.high = widgets.DatePicker(layout=widgets.Layout(width="50%"))
        for picker in (self.low, self.high):
            picker.observe(self._changed, "value")
        return widgets.HBox([self.low, self.high], layout=widgets.Layout(width="100%"))

    def read(self) -> Any:
        low, high = self.low.value, self.high.value
        return (low, high) if low is not None or high is not None else None

    def write(self, value: Any) -> None:
        low, high = _pair(value, self.caption)
        self.low.value, self.high.value = _day(low), _day(high)

    def condition(self, value: Any) -> Any:
        low, high = _pair(value, self.caption)
        if self.field.type == "date":
            parts = {"ge": self._coerce(low, "from"), "le": self._coerce(high, "to")}
            return {op: v for op, v in parts.items() if v is not None} or None
        parts = {"ge": _start_of(low) if _is_day(low) else self._coerce(low, "from")}
        if _is_day(high):
            parts["lt"] = _start_of(high + timedelta(days=1))
        else:
            parts["le"] = self._coerce(high, "to")
        return {op: v for op, v in parts.items() if v is not None} or None


class ChoiceFilter(ColumnFilter):
    """Equality with one choice of an enum column ("any" for no condition)."""

    def build(self) -> widgets.DOMWidget:
        self.choices = list(self.field.choices or ())
        options = [("any", 0), *((c.label, i) for i, c in enumerate(self.choices, start=1))]
        self.menu = widgets.Dropdown(options=options, value=0, layout=widgets.Layout(width="100%"))
        self.menu.observe(self._changed, "value")
        return self.menu

    def read(self) -> Any:
        return self.choices[self.menu.value - 1].value if self.menu.value else None

    def write(self, value: Any) -> None:
        found = (i for i, c in enumerate(self.choices, 1) if value in (c.value, c.label))
        self.menu.value = next(found, 0) if value is not None else 0

    def condition(self, value: Any) -> Any:
        return None if value is None else self._coerce(value, "choice")


class BooleanFilter(ColumnFilter):
    """Yes, no or any on a boolean column."""

    def build(self) -> widgets.DOMWidget:
        options = [("any", 0), ("yes", 1), ("no", 2)]
        self.menu = widgets.Dropdown(options=options, value=0, layout=widgets.Layout(width="100%"))
        self.menu.observe(self._changed, "value")
        return self.menu

    def read(self) -> Any:
        return {0: None, 1: True, 2: False}[self.menu.value]

    def write(self, value: Any) -> None:
        self.menu.value = 0 if value is None else 1 if value else 2

    def condition(self, value: Any) -> Any:
        return None if value is None else self._coerce(value, "value")


class ReferenceFilter(TextFilter):
    """Equality with the id of the referenced record."""

    placeholder = "id"

    def condition(self, value: Any) -> Any:
        return self._coerce(value, "id")


def _pair(value: Any, caption: str) -> tuple[Any, Any]:
    """``(low, high)`` from a range given as a pair, or a single value meaning both ends."""
    if value is None:
        return None, None
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise QueryError(f"{caption}: expected a range (low, high), got {value!r}")
        return value[0], value[1]
    return value, value


def _is_day(value: Any) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _day(value: Any) -> date | None:
    """What a DatePicker can show of ``value``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip()).date()
        except ValueError:
            return None
    return None


def filter_for(name: str, field: FieldDef, caption: str) -> ColumnFilter:
    """The filter matching ``field``'s type."""
    kind: type[ColumnFilter] = ColumnFilter
    if field.type in TEXT_TYPES:
        kind = TextFilter
    elif field.type in NUMERIC_TYPES or field.type == "time":
        kind = RangeFilter
    elif field.type in ("date", "datetime"):
        kind = DateRangeFilter
    else:
        kind = _BY_TYPE.get(field.type, ColumnFilter)
    return kind(name, field, caption)


_BY_TYPE: dict[str, type[ColumnFilter]] = {
    "enum": ChoiceFilter,
    "boolean": BooleanFilter,
    "reference": ReferenceFilter,
}


# -- how a column shows its values ------------------------------------------------------
NOT_SHOWN_BY_DEFAULT = frozenset({"json", "array", "file"})
CELL_CHARS = 80  # longer cell text is cut, the whole of it shown on hover
MARGIN = 2  # pixels between columns
COLUMN_WIDTHS = {
    "boolean": 70, "integer": 90, "number": 110, "date": 110, "time": 90, "datetime": 200,
    "enum": 130, "reference": 140, "text": 220,
}  # fmt: skip


def default_columns(defn: ComponentDef) -> list[str]:
    """``id`` and every stored field a cell can show (not json, array or file)."""
    fields = defn.stored_fields().items()
    return ["id", *(n for n, f in fields if f.type not in NOT_SHOWN_BY_DEFAULT)]


def caption_of(name: str, field: FieldDef) -> str:
    """The header of a column: the field's title, else its name in words."""
    if name == "id":
        return "ID"
    return field.title or name.replace("_", " ").capitalize()


def column_width(field: FieldDef) -> int:
    """The width in pixels of a column of ``field``'s type."""
    return COLUMN_WIDTHS.get(field.type, 160)


def cell_text(field: FieldDef, value: Any, label: str | None = None) -> str:
    """A value as a cell shows it, before cutting and escaping.

    Enums show their label, booleans ✓ or ✗, references ``#id`` and the referenced record's
    ``label`` when given, times without microseconds.
    """
    if value is None:
        return ""
    if field.type == "enum":
        return next((c.label for c in field.choices or () if c.value == value), str(value))
    if field.type == "boolean":
        return "✓" if value else "✗"
    if field.type == "reference":
        return f"#{value} {label}" if label else f"#{value}"
    if isinstance(value, datetime | time):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def cell_html(field: FieldDef, value: Any, name: str, width: int, label: str | None = None) -> str:
    """One cell of column ``name`` (drawn by :func:`grid_css`): escaped, cut to one line.

    Text wider than the column also shows whole on hover.
    """
    text = cell_text(field, value, label)
    shown = text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
    kind = " abg-num" if field.type in NUMERIC_TYPES else ""
    tip = f' title="{html.escape(text[:1000])}"' if len(text) * 7 > width else ""
    return f'<div class="abg-cell abg-col-{name}{kind}"{tip}>{html.escape(shown)}</div>'


def grid_css(scope: str, widths: Mapping[str, int]) -> str:
    """The style sheet of the grid with CSS class ``scope``: rows of fixed-width cells.

    Each column is as wide as its header (``widths`` in pixels, plus :data:`MARGIN` on both
    sides), so cells line up under the sort buttons.
    """
    rules = [
        f".{scope} .abg-row{{display:flex}}",
        f".{scope} .abg-hidden{{display:none}}",
        f".{scope} .abg-cell{{box-sizing:border-box;flex:0 0 auto;margin:0 {MARGIN}px;"
        "white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
        f".{scope} .abg-num{{text-align:right}}",
        *(f".{scope} .abg-col-{n}{{width:{w}px}}" for n, w in widths.items()),
    ]
    return "<style>" + "\n".join(rules) + "</style>"
