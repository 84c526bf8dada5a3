"""``TimeField``: a time field as a time picker."""

from __future__ import annotations

from datetime import time
from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import InputControl


class TimeField(InputControl):
    """A ``TimePicker`` (to the second); ``value`` is a ``datetime.time``."""

    default_field: ClassVar[FieldDef] = FieldDef(type="time")

    def make_input(self) -> widgets.DOMWidget:
        """An empty time picker."""
        picker = widgets.TimePicker(value=None, step=1)
        self.watch(picker)
        return picker

    def write_input(self, value: Any) -> None:
        """Show ``value`` if it is a time (empty otherwise)."""
        self.input.value = value if isinstance(value, time) else None
