"""``NumberField``: integer and number fields as text, so that empty is a value too."""

from __future__ import annotations

from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import InputControl, escape


def format_number(value: Any) -> str:
    """``value`` as a person would type it (``2`` rather than ``2.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return "" if value is None else str(value)


def bounds_hint(field: FieldDef) -> str:
    """``"between 0 and 10"``, ``"at least 0"``, ``"at most 10"`` or ``""``."""
    low, high = field.min, field.max
    if low is not None and high is not None:
        return f"between {format_number(low)} and {format_number(high)}"
    if low is not None:
        return f"at least {format_number(low)}"
    return f"at most {format_number(high)}" if high is not None else ""


class NumberField(InputControl):
    """A text input read as an integer or a number, with the field's bounds shown as a hint."""

    default_field: ClassVar[FieldDef] = FieldDef(type="number")

    def __init__(self, field: FieldDef | None = None, *, name: str = "", **kwargs: Any) -> None:
        super().__init__(field, name=name, **kwargs)
        text = bounds_hint(self.field)
        self.hint = widgets.HTML(f'<span class="appbook-hint">{escape(text)}</span>')
        self.hint.layout.display = "" if text else "none"
        self.arrange(self.input, self.hint)

    def make_input(self) -> widgets.DOMWidget:
        """A ``Text`` that reports when the user leaves it or presses Enter."""
        text = widgets.Text(continuous_update=False)
        self.watch(text)
        return text

    def write_input(self, value: Any) -> None:
        """Show ``value`` without a useless ``.0``."""
        self.input.value = format_number(value)
