"""``DateTimeField``: a datetime field as a date-and-time picker, in UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import InputControl


class DateTimeField(InputControl):
    """A ``DatetimePicker``; ``value`` is an aware ``datetime`` in UTC.

    The browser shows the time in the viewer's time zone and sends back an aware datetime;
    naive datetimes set from code are taken as UTC, as the engine takes them.
    """

    default_field: ClassVar[FieldDef] = FieldDef(type="datetime")

    def make_input(self) -> widgets.DOMWidget:
        """An empty (time-zone aware) date-and-time picker."""
        picker = widgets.DatetimePicker(value=None)
        self.watch(picker)
        return picker

    def write_input(self, value: Any) -> None:
        """Show ``value`` if it is an aware datetime (empty otherwise)."""
        aware = isinstance(value, datetime) and value.tzinfo is not None
        self.input.value = value if aware else None
