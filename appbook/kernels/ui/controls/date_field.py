"""``DateField``: a date field as a date picker."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import InputControl


class DateField(InputControl):
    """A ``DatePicker``; ``value`` is a ``datetime.date``."""

    default_field: ClassVar[FieldDef] = FieldDef(type="date")

    def make_input(self) -> widgets.DOMWidget:
        """An empty date picker."""
        picker = widgets.DatePicker(value=None)
        self.watch(picker)
        return picker

    def write_input(self, value: Any) -> None:
        """Show ``value`` if it is a date (empty otherwise)."""
        is_date = isinstance(value, date) and not isinstance(value, datetime)
        self.input.value = value if is_date else None
