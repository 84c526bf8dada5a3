"""``Button``: a push button that is busy (greyed, spinning) while its handlers run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets
from traitlets import Bool, observe


class Button(widgets.Button):  # type: ignore[misc]
    """``ipywidgets.Button`` plus a ``busy`` state.

    ``on_click`` is the ipywidgets one. While the click handlers run the button is busy:
    disabled with a spinning icon, and further clicks (a double click, say) are ignored.
    Work that outlives the handler can hold the state with ``with button.working(): ...``.
    """

    busy = Bool(False, help="Disables the button and shows a spinner (work in progress).")
    icon: str  # (ipywidgets traits, typed for mypy)
    disabled: bool

    def __init__(self, text: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("description", text)
        super().__init__(**kwargs)
        self._idle_icon, self._idle_disabled = self.icon, self.disabled
        self.add_class("appbook-button")

    def click(self) -> None:
        """Run the click handlers, unless the button is busy."""
        if self.busy:
            return
        with self.working():
            super().click()

    @contextmanager
    def working(self) -> Iterator[None]:
        """Be busy for the duration of the block."""
        was_busy = self.busy
        self.busy = True
        try:
            yield
        finally:
            self.busy = was_busy

    @observe("busy")
    def _busy_changed(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._idle_icon, self._idle_disabled = self.icon, self.disabled
            self.icon, self.disabled = "spinner spin", True
            self.add_class("appbook-busy")
        else:
            self.icon, self.disabled = self._idle_icon, self._idle_disabled
            self.remove_class("appbook-busy")
