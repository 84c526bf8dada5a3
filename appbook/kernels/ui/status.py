"""A one-line status: the outcome of the last action, coloured by kind."""

from __future__ import annotations

import html

import ipywidgets as widgets
from traitlets import Unicode

COLOURS = {
    "ok": "#1b5e20",
    "info": "#0d47a1",
    "warning": "#8a5300",
    "error": "#b00020",
    "": "inherit",
}


class StatusLine(widgets.HTML):  # type: ignore[misc]
    """Shows ``text`` in the colour of ``kind`` (ok, info, warning, error)."""

    kind = Unicode("", help="ok, info, warning, error, or '' for none.")
    text = Unicode("", help="The message.")

    def show(self, kind: str, text: str) -> None:
        """Set both at once and render."""
        self.kind, self.text = kind, text
        colour = COLOURS.get(kind, "inherit")
        body = html.escape(text)
        style = f"color:{colour}"
        self.value = f'<span class="appbook-status appbook-{kind}" style="{style}">{body}</span>'
