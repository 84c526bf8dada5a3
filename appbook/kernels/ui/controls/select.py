"""``Select``: an enum field as a drop-down of its choices."""

from __future__ import annotations

from typing import Any, ClassVar

import ipywidgets as widgets
from traitlets import observe

from ....server.definitions.models import FieldDef
from ._common import InputControl, choice_options, select_value


class Select(InputControl):
    """A ``Dropdown`` of the field's choices (labels shown, values stored).

    An empty choice comes first unless the control is required; changing ``required``
    rebuilds the list.
    """

    default_field: ClassVar[FieldDef] = FieldDef(type="enum", choices=())

    def make_input(self) -> widgets.DOMWidget:
        """The drop-down, with nothing selected."""
        options = choice_options(self.field, empty=not self.field.required)
        dropdown = widgets.Dropdown(options=options, index=None)
        self.watch(dropdown)
        return dropdown

    def write_input(self, value: Any) -> None:
        """Select ``value``'s choice (none if it is not one)."""
        select_value(self.input, value)

    @observe("required")
    def _rebuild_options(self, change: dict[str, Any]) -> None:
        if not hasattr(self, "input"):
            return
        self._writing = True
        try:
            self.input.options = choice_options(self.field, empty=not self.required)
            select_value(self.input, self.value)
        finally:
            self._writing = False
