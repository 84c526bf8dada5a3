"""``ProgressBar``: a bar with a label saying how far along the work is."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from traitlets import Float, Unicode, observe


class ProgressBar(widgets.HBox):  # type: ignore[misc]
    """A ``FloatProgress`` from 0 to ``max`` and a label (``text``, else the percentage)."""

    value = Float(0.0, help="Progress so far, between 0 and max.")
    max = Float(1.0, help="The value at which the work is done (greater than 0).")
    text = Unicode("", help="The label ('' shows the percentage).")

    def __init__(
        self, value: float = 0.0, *, max: float = 1.0, text: str = "", **kwargs: Any
    ) -> None:
        if max <= 0:
            raise ValueError("max must be greater than 0")
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=max)
        self.label = widgets.Label()
        super().__init__(children=[self.bar, self.label], value=value, max=max, text=text, **kwargs)
        self.add_class("appbook-progress")
        self._render()

    @observe("value", "max", "text")
    def _changed(self, change: dict[str, Any]) -> None:
        if hasattr(self, "label"):
            self._render()

    def _render(self) -> None:
        self.bar.max = self.max
        self.bar.value = min(max(self.value, 0.0), self.max)
        self.label.value = self.text or f"{self.bar.value / self.max:.0%}"
