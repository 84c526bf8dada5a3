"""``Checkbox``: a boolean field as a tick box."""

from __future__ import annotations

from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import UnsetInputControl


class Checkbox(UnsetInputControl):
    """A tick box; an empty (None) value shows unticked and reads as empty until clicked."""

    default_field: ClassVar[FieldDef] = FieldDef(type="boolean")

    def make_input(self) -> widgets.DOMWidget:
        """A ``Checkbox`` without its own description (the caption names it)."""
        box = widgets.Checkbox(indent=False)
        self.watch(box)
        return box

    def write_input(self, value: Any) -> None:
        """Tick the box for True."""
        self.input.value = value is True
