"""``FileField``: a file field as an upload button that stores into the Appbook file store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as widgets
from traitlets import observe

from ....server.definitions.models import FieldDef
from ....server.errors import AppbookError, ValidationError
from ....server.files.limits import format_size
from ....server.validation import FILE_ID
from ._common import InputControl, escape

if TYPE_CHECKING:
    from ....server.engine import Appbook

NEEDS_STORE = "file upload needs the Appbook file store (pass app=...)"


class FileField(InputControl):
    """A ``FileUpload``; an upload is stored with ``app.files.put`` and ``value`` is its id.

    The store applies the field's ``accept`` and ``max_size``; its refusal (a
    ``ValidationError``, ``PayloadTooLarge`` or any other Appbook error) becomes the
    control's error and the previous value stays. Below the button the control names the
    stored file and how to download it (a link when ``download_url``, a template such as
    ``"/appbook/api/files/{id}"``, is given). Without ``app`` uploads are refused.
    """

    default_field: ClassVar[FieldDef] = FieldDef(type="file")

    def __init__(
        self,
        field: FieldDef | None = None,
        *,
        name: str = "",
        app: Appbook | None = None,
        folder: str = "",
        download_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.app, self.folder, self.download_url = app, folder, download_url
        self._file_id: str | None = None
        self.info = widgets.HTML()
        self.remove = widgets.Button(description="Remove", icon="times", layout={"display": "none"})
        self.remove.on_click(lambda _: self.clear())
        super().__init__(field, name=name, **kwargs)
        self.arrange(self.input, widgets.HBox([self.info, self.remove]))

    def make_input(self) -> widgets.DOMWidget:
        """The upload button, limited to the field's accepted types."""
        upload = widgets.FileUpload(
            accept=",".join(self.field.accept or ()), multiple=False, description="Upload"
        )
        upload.observe(self._uploaded, "value")
        return upload

    def read_input(self) -> Any:
        """The id of the file the control holds (None when none)."""
        return self._file_id

    def write_input(self, value: Any) -> None:
        """Hold file ``value`` and describe it."""
        self._file_id = value if isinstance(value, str) else None
        self._describe()

    def _uploaded(self, change: dict[str, Any]) -> None:
        entries = change["new"]
        if not entries:
            return
        entry = entries[0]
        self.input.value = ()  # the bytes are kept once, in the store
        if self.app is None:
            self.error = NEEDS_STORE
            return
        try:
            info = self.app.files.put(
                bytes(entry["content"]),
                name=entry["name"],
                folder=self.folder,
                media_type=entry.get("type") or None,
                accept=self.field.accept,
                max_size=self.field.max_size,
            )
        except ValidationError as exc:
            self.error = "; ".join(m for messages in exc.errors.values() for m in messages)
            return
        except AppbookError as exc:  # too large, or the store is unavailable
            self.error = exc.message
            return
        self._file_id = info.id
        self.sync_to_value()
        self._describe()

    def _describe(self) -> None:
        file_id = self._file_id
        held = file_id is not None and FILE_ID.match(file_id) is not None
        self.remove.layout.display = "" if held else "none"
        if file_id is None or not held:
            self.info.value = ""
            return
        name, size = file_id, ""
        if self.app is not None:
            try:
                stat = self.app.files.stat(file_id)
            except AppbookError:
                self.info.value = (
                    f'<span class="appbook-hint">file {escape(file_id)} is missing</span>'
                )
                return
            name, size = stat.name, f" ({format_size(stat.size)})"
        self.info.value = f"<b>{escape(name)}</b>{escape(size)} · {self._download_hint(file_id)}"

    def _download_hint(self, file_id: str) -> str:
        if self.download_url:
            href = escape(self.download_url.format(id=file_id))
            return f'<a href="{href}" download target="_blank" rel="noopener">download</a>'
        return (
            f'<span class="appbook-hint">download: <code>app.files.get("{file_id}")</code></span>'
        )

    def clear(self) -> None:
        """Let go of the file (the stored file itself stays; records may refer to it)."""
        self._file_id = None
        self.sync_to_value()
        self._describe()

    @observe("disabled")
    def _disable_remove(self, change: dict[str, Any]) -> None:
        if hasattr(self, "remove"):
            self.remove.disabled = self.disabled
