"""``MultiSelect``: an array field as a multiple selection or as free tags."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import TEXT_TYPES, FieldDef
from ._common import InputControl, choice_options, same


class MultiSelect(InputControl):
    """``SelectMultiple`` over the field's choices when it has some, else ``TagsInput``.

    Tags are text; for arrays of other types (integers, dates, references) each tag is read
    as the engine reads imported text. An empty selection is an empty (None) value.
    """

    default_field: ClassVar[FieldDef] = FieldDef(type="array", of="string")

    def make_input(self) -> widgets.DOMWidget:
        """The multiple selection, or the tags input when there are no choices."""
        chooser: widgets.DOMWidget
        if self.field.choices:
            options = choice_options(self.field, empty=False)
            chooser = widgets.SelectMultiple(options=options, rows=min(len(options), 8))
        else:
            chooser = widgets.TagsInput(allow_duplicates=False)
        self.watch(chooser)
        return chooser

    @property
    def tags(self) -> bool:
        """Whether the input is free tags (no choices)."""
        return isinstance(self.input, widgets.TagsInput)

    def read_input(self) -> Any:
        """The selected values (tags as text); None when nothing is selected."""
        values = list(self.input.value)
        if not values:
            return None
        if self.tags and (self.field.of or "string") not in TEXT_TYPES:
            return json.dumps(values)  # read from text: "5" -> 5, "2024-01-31" -> a date
        return values

    def write_input(self, value: Any) -> None:
        """Select (or tag) each item of ``value``."""
        items = list(value) if isinstance(value, list | tuple) else []
        if self.tags:
            self.input.value = [_tag(v) for v in items]
        else:
            options = [v for _label, v in self.input.options]
            self.input.value = tuple(o for o in options if any(same(o, v) for v in items))


def _tag(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
