"""``ConfirmationState``: a coloured word or sentence saying what became of an action."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from traitlets import Enum, Unicode, observe

from ._common import escape

#: state -> (default text, colour)
STATES: dict[str, tuple[str, str]] = {
    "": ("", "inherit"),
    "saving": ("Saving…", "#666666"),
    "saved": ("Saved", "#1b7f37"),
    "error": ("Error", "#b00020"),
    "conflict": ("Record changed elsewhere", "#b35c00"),
    "info": ("", "#1f5fa8"),
}


class ConfirmationState(widgets.HTML):  # type: ignore[misc]
    """Shows ``state`` ("saving", "saved", "error", "conflict", "info" or "" for nothing) in
    its colour, with ``message`` instead of the state's default text when given."""

    state = Enum(tuple(STATES), default_value="", help="What happened: " + ", ".join(STATES))
    message = Unicode("", help="Text to show instead of the state's default text.")

    def __init__(self, state: str = "", message: str = "", **kwargs: Any) -> None:
        super().__init__(state=state, message=message, **kwargs)
        self.add_class("appbook-status")
        self._render()

    def show(self, state: str, message: str = "") -> None:
        """Switch to ``state`` with ``message`` (the state's default text when '')."""
        with self.hold_trait_notifications():
            self.state, self.message = state, message

    def clear(self) -> None:
        """Show nothing."""
        self.show("")

    @observe("state", "message")
    def _changed(self, change: dict[str, Any]) -> None:
        self._render()

    def _render(self) -> None:
        default, colour = STATES[self.state]
        text = self.message or default
        self.value = f'<span style="color:{colour}">{escape(text)}</span>' if text else ""
