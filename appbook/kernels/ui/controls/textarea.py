"""``TextArea``: several lines of text, for text fields."""

from __future__ import annotations

from typing import ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import InputControl


class TextArea(InputControl):
    """A multi-line text input."""

    default_field: ClassVar[FieldDef] = FieldDef(type="text")
    rows: ClassVar[int] = 4

    def make_input(self) -> widgets.DOMWidget:
        """A ``Textarea`` that reports when the user leaves it."""
        area = widgets.Textarea(continuous_update=False, rows=self.rows)
        self.watch(area)
        return area
