"""``Image``: a picture from bytes or from a stored file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

if TYPE_CHECKING:
    from ....server.engine import Appbook


class Image(widgets.Image):  # type: ignore[misc]
    """An ``ipywidgets.Image`` of ``data`` (with its ``format``, ``png`` by default), or of
    the stored file ``file_id`` read through ``app`` (its format from its media type)."""

    def __init__(
        self,
        data: bytes | None = None,
        *,
        file_id: str | None = None,
        app: Appbook | None = None,
        format: str = "png",
        **kwargs: Any,
    ) -> None:
        super().__init__(value=data or b"", format=format, **kwargs)
        self.app = app
        self.add_class("appbook-image")
        if file_id is not None:
            self.show_file(file_id)

    def show_file(self, file_id: str) -> None:
        """Show stored file ``file_id``; ``ValueError`` if it is not an image.

        Raises :class:`~appbook.NotFound` for an unknown id.
        """
        if self.app is None:
            raise ValueError("showing a stored file needs the Appbook file store (pass app=...)")
        media_type = self.app.files.stat(file_id).media_type.split(";", 1)[0].strip()
        kind, _, subtype = media_type.partition("/")
        if kind != "image" or not subtype:
            raise ValueError(f"file {file_id} is {media_type}, not an image")
        self.format = subtype
        self.value = self.app.files.get(file_id)
