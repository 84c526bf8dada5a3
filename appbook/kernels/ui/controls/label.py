"""``Label``: a line of plain text."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets


class Label(widgets.Label):  # type: ignore[misc]
    """Plain text (never interpreted as HTML)."""

    def __init__(self, text: str = "", **kwargs: Any) -> None:
        super().__init__(value=text, **kwargs)
        self.add_class("appbook-label")
