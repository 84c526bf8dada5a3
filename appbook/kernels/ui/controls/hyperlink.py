"""``Hyperlink``: an escaped anchor to a web address."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import ipywidgets as widgets
from traitlets import Bool, Unicode, observe

from ._common import escape

SAFE_SCHEMES = frozenset({"", "http", "https", "mailto"})


class Hyperlink(widgets.HTML):  # type: ignore[misc]
    """A link (``rel="noopener noreferrer"``); text and address are escaped.

    Addresses with another scheme than http, https or mailto (``javascript:``, ``data:``)
    are not linked: the text is shown alone.
    """

    url = Unicode("", help="The address the link opens (http, https, mailto or relative).")
    text = Unicode("", help="The link text ('' shows the address).")
    new_tab = Bool(True, help="Open the address in a new tab.")

    def __init__(self, text: str = "", url: str = "", **kwargs: Any) -> None:
        super().__init__(text=text, url=url, **kwargs)
        self.add_class("appbook-link")
        self._render()

    @observe("url", "text", "new_tab")
    def _changed(self, change: dict[str, Any]) -> None:
        self._render()

    def _render(self) -> None:
        shown = escape(self.text or self.url)
        if not safe_url(self.url):
            self.value = f"<span>{shown}</span>"
            return
        target = ' target="_blank"' if self.new_tab else ""
        self.value = f'<a href="{escape(self.url)}"{target} rel="noopener noreferrer">{shown}</a>'


def safe_url(url: str) -> bool:
    """Whether ``url`` may be linked: http(s), mailto or relative, and not empty."""
    # Browsers drop control characters and spaces before reading the scheme ("java\tscript:").
    bare = "".join(ch for ch in url if ch > " ")
    try:
        scheme = urlsplit(bare).scheme.lower()
    except ValueError:
        return False
    return bool(bare) and scheme in SAFE_SCHEMES
