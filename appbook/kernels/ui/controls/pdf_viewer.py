"""``PdfViewer``: a PDF from bytes or from a stored file, embedded in the page."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ....server.files.limits import format_size
from ._common import escape

if TYPE_CHECKING:
    from ....server.engine import Appbook

MAX_PREVIEW = 10 * 1024 * 1024


class PdfViewer(widgets.HTML):  # type: ignore[misc]
    """The PDF ``data`` (or stored file ``file_id``, through ``app``) in an ``<object>``.

    The bytes travel inside the page as a ``data:`` URL, so documents over ``max_size``
    bytes (10 MB by default) are not embedded: a message says so instead. The frame is
    ``height`` tall and at most as wide as its container.
    """

    def __init__(
        self,
        data: bytes | None = None,
        *,
        file_id: str | None = None,
        app: Appbook | None = None,
        height: str = "600px",
        max_size: int = MAX_PREVIEW,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app, self.height, self.max_size = app, height, max_size
        self.add_class("appbook-pdf")
        if file_id is not None:
            self.show_file(file_id)
        else:
            self.show_bytes(data)

    def show_bytes(self, data: bytes | None, title: str = "PDF document") -> None:
        """Embed ``data`` (nothing when None or empty)."""
        if not data:
            self.value = ""
            return
        if len(data) > self.max_size:
            self._too_large(title, len(data))
            return
        url = "data:application/pdf;base64," + base64.b64encode(data).decode("ascii")
        style = f"width:100%;max-width:100%;height:{escape(self.height)};border:0"
        self.value = (
            f'<object data="{url}" type="application/pdf" style="{style}" '
            f'title="{escape(title)}"><em>This browser cannot show PDF files inline.</em></object>'
        )

    def show_file(self, file_id: str) -> None:
        """Embed stored file ``file_id``; ``ValueError`` if it is not a PDF.

        Raises :class:`~appbook.NotFound` for an unknown id.
        """
        if self.app is None:
            raise ValueError("showing a stored file needs the Appbook file store (pass app=...)")
        info = self.app.files.stat(file_id)
        if info.media_type.split(";", 1)[0].strip() != "application/pdf":
            raise ValueError(f"file {file_id} is {info.media_type}, not a PDF")
        if info.size > self.max_size:
            self._too_large(info.name, info.size)
            return
        self.show_bytes(self.app.files.get(file_id), info.name)

    def _too_large(self, title: str, size: int) -> None:
        self.value = (
            f"<em>{escape(title)} is too large to preview here ({format_size(size)}; "
            f"the limit is {format_size(self.max_size)})</em>"
        )
