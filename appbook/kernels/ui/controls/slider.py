"""``Slider``: an integer or number field between the field's min and max."""

from __future__ import annotations

from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ._common import UnsetInputControl


class Slider(UnsetInputControl):
    """An ``IntSlider`` (integer fields) or ``FloatSlider`` (number fields).

    The field must set both ``min`` and ``max``. A slider cannot be empty: while ``value``
    is None it rests at the minimum with its readout hidden, until the user moves it.
    """

    default_field: ClassVar[FieldDef] = FieldDef(type="integer", min=0, max=100)

    def __init__(self, field: FieldDef | None = None, *, name: str = "", **kwargs: Any) -> None:
        spec = field or self.default_field
        if spec.type not in ("integer", "number"):
            raise ValueError(f"a slider needs an integer or number field, not {spec.type}")
        if spec.min is None or spec.max is None:
            raise ValueError("a slider needs both min and max on its field")
        super().__init__(spec, name=name, **kwargs)

    def make_input(self) -> widgets.DOMWidget:
        """The slider over ``[min, max]`` (a hundred steps for number fields)."""
        low, high = self.field.min, self.field.max
        assert low is not None and high is not None
        slider: widgets.DOMWidget
        if self.field.type == "integer":
            slider = widgets.IntSlider(min=int(low), max=int(high), continuous_update=False)
        else:
            step = (high - low) / 100 or 1.0
            slider = widgets.FloatSlider(
                min=float(low), max=float(high), step=step, continuous_update=False
            )
        self.watch(slider)
        return slider

    def _input_changed(self, change: dict[str, Any]) -> None:
        super()._input_changed(change)
        self.input.readout = self._touched

    def write_input(self, value: Any) -> None:
        """Move to ``value`` (clamped by the slider), or rest at the minimum when empty."""
        number = isinstance(value, int | float) and not isinstance(value, bool)
        self.input.readout = number
        if not number:
            self.input.value = self.input.min
        elif self.field.type == "integer":
            self.input.value = round(value)
        else:
            self.input.value = float(value)
