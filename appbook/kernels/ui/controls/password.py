"""``Password``: a masked one-line text input."""

from __future__ import annotations

import ipywidgets as widgets

from ._common import InputControl


class Password(InputControl):
    """A masked text input for string fields.

    The browser masks what is typed, but the text still travels to the kernel as the
    widget's value: it is a form input, not a secret store.
    """

    def make_input(self) -> widgets.DOMWidget:
        """A ``Password`` input that reports when the user leaves it or presses Enter."""
        text = widgets.Password(continuous_update=False)
        self.watch(text)
        return text
