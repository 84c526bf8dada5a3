"""``RadioButtons``: an enum field as a column of radio buttons."""

from __future__ import annotations

from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import InputControl, choice_options, select_value


class RadioButtons(InputControl):
    """One radio button per choice (labels shown, values stored); none selected when empty."""

    default_field: ClassVar[FieldDef] = FieldDef(type="enum", choices=())

    def make_input(self) -> widgets.DOMWidget:
        """The radio buttons, with nothing selected."""
        radio = widgets.RadioButtons(options=choice_options(self.field, empty=False), index=None)
        self.watch(radio)
        return radio

    def write_input(self, value: Any) -> None:
        """Select ``value``'s button (none if it is not a choice)."""
        select_value(self.input, value)
