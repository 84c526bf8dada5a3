"""``RichText``: a block of HTML from a component definition."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets


class RichText(widgets.HTML):  # type: ignore[misc]
    """HTML shown as it is, **without sanitising**.

    Only give it trusted HTML: text an app maker wrote in a component definition. Never
    pass record values or anything an end user typed; show those with :class:`Label`, or
    escape them first (``html.escape``).
    """

    def __init__(self, html: str = "", **kwargs: Any) -> None:
        super().__init__(value=html, **kwargs)
        self.add_class("appbook-rich-text")
