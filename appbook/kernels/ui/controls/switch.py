"""``Switch``: a boolean field as an on/off toggle."""

from __future__ import annotations

from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import CONTROLS_CSS, UnsetInputControl


class Switch(UnsetInputControl):
    """A ``ToggleButton`` styled as a switch, labelled ``on_text``/``off_text``.

    An empty (None) value shows "off" and reads as empty until the user flips it.
    """

    default_field: ClassVar[FieldDef] = FieldDef(type="boolean")

    def __init__(
        self,
        field: FieldDef | None = None,
        *,
        name: str = "",
        on_text: str = "On",
        off_text: str = "Off",
        **kwargs: Any,
    ) -> None:
        self.on_text, self.off_text = on_text, off_text
        super().__init__(field, name=name, **kwargs)
        self.arrange(self.input, widgets.HTML(CONTROLS_CSS))

    def make_input(self) -> widgets.DOMWidget:
        """The toggle, repainted whenever it flips."""
        toggle = widgets.ToggleButton(value=False)
        toggle.add_class("appbook-switch")
        toggle.observe(lambda _: self._paint(), "value")
        self.watch(toggle)
        self._paint(toggle)
        return toggle

    def write_input(self, value: Any) -> None:
        """Switch on for True."""
        self.input.value = value is True

    def _paint(self, toggle: Any = None) -> None:
        toggle = toggle or self.input
        on = bool(toggle.value)
        toggle.description = self.on_text if on else self.off_text
        toggle.icon = "toggle-on" if on else "toggle-off"
        toggle.button_style = "success" if on else ""
