"""``CodeEditor``: a monospace text area; for json fields it edits the value as JSON text."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import CONTROLS_CSS, InputControl


class CodeEditor(InputControl):
    """Monospace text. On a json field the input holds JSON text and ``value`` the parsed JSON.

    Invalid JSON shows the engine's message ("invalid JSON: ... at character N").
    """

    default_field: ClassVar[FieldDef] = FieldDef(type="json")

    def __init__(self, field: FieldDef | None = None, *, name: str = "", **kwargs: Any) -> None:
        super().__init__(field, name=name, **kwargs)
        self.arrange(self.input, widgets.HTML(CONTROLS_CSS))

    def make_input(self) -> widgets.DOMWidget:
        """A ``Textarea`` with the ``appbook-code`` class (monospace)."""
        area = widgets.Textarea(continuous_update=False, rows=8)
        area.layout.width = "100%"
        area.add_class("appbook-code")
        self.watch(area)
        return area

    def write_input(self, value: Any) -> None:
        """Show ``value``: pretty-printed JSON on a json field, else the text itself."""
        if self.field.type != "json" or value is None:
            super().write_input(value)
            return
        try:
            self.input.value = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            self.input.value = str(value)
