"""``TextField``: one line of text, for string, email and uri fields."""

from __future__ import annotations

import ipywidgets as widgets

from ._common import InputControl


class TextField(InputControl):
    """A one-line text input; the engine's rules (length, pattern, email, URI) apply on change."""

    def make_input(self) -> widgets.DOMWidget:
        """A ``Text`` that reports when the user leaves it or presses Enter."""
        text = widgets.Text(continuous_update=False)
        self.watch(text)
        return text
