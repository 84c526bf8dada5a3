"""The contract every Appbook control keeps, so forms and pages can drive any of them.

A :class:`FieldControl` is a ``VBox`` of a caption, one input widget and an error line. Its
``value`` trait holds the value in the engine's terms (``None`` when empty, ``date`` for a
date, a record id for a reference); the input widget holds whatever the browser shows.
``check()`` applies the engine's own field rules (:func:`appbook.server.validation.coerce`)
so a form refuses exactly what the engine would, and shows the reason under the control.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
from traitlets import Any as AnyTrait
from traitlets import Bool, Unicode, observe

from ...server.definitions.models import FieldDef
from ...server.validation import Invalid, coerce


class FieldControl(widgets.VBox):  # type: ignore[misc]
    """A caption, an input and an error line, bound to one field (or standalone)."""

    value = AnyTrait(None, allow_none=True, help="The value in engine terms (None when empty).")
    field_name = Unicode("", help="The bound field's name ('' when standalone).")
    caption = Unicode("", help="The text shown above the input (field title by default).")
    error = Unicode("", help="The message shown under the input ('' hides it).")
    required = Bool(False, help="Shows a * and makes an empty value an error.")
    disabled = Bool(False, help="Greys the input out; the value cannot be changed.")
    visible = Bool(True, help="Hides the whole control when False.")
    placeholder = Unicode("", help="Hint shown in an empty input.")

    def __init__(self, field: FieldDef | None = None, *, name: str = "", **kwargs: Any) -> None:
        self.field = field or FieldDef(type="string")
        self._caption = widgets.HTML()
        self._error = widgets.HTML(layout=widgets.Layout(display="none"))
        self._error.add_class("appbook-error")
        self.input = self.make_input()
        kwargs.setdefault(
            "caption",
            (field.title if field and field.title else name.replace("_", " ").capitalize()),
        )
        kwargs.setdefault("required", bool(field and field.required))
        super().__init__(
            children=[self._caption, self.input, self._error], field_name=name, **kwargs
        )
        self.add_class("appbook-control")
        self._render_caption()
        self.sync_from_value()

    # -- what subclasses provide ------------------------------------------------------
    def make_input(self) -> widgets.DOMWidget:
        """Build the input widget (a Text by default)."""
        text = widgets.Text(continuous_update=False)
        text.observe(lambda _: self.sync_to_value(), "value")
        return text

    def read_input(self) -> Any:
        """The input's content as the raw value to check ('' for empty text)."""
        return self.input.value

    def write_input(self, value: Any) -> None:
        """Show ``value`` (engine terms) in the input."""
        self.input.value = "" if value is None else str(value)

    # -- behaviour shared by every control --------------------------------------------
    def sync_to_value(self) -> None:
        """Input changed: check it, then publish it as ``value`` if it is valid."""
        ok, clean = self.check_raw(self.read_input())
        if ok:
            self._set_value_quietly(clean)

    def sync_from_value(self) -> None:
        """``value`` changed from code: show it."""
        self._writing = True
        try:
            self.write_input(self.value)
        finally:
            self._writing = False

    def check(self) -> bool:
        """Apply the field's rules to what the input holds; show the error. True if valid."""
        return self.check_raw(self.read_input())[0]

    def check_raw(self, raw: Any) -> tuple[bool, Any]:
        """(valid, engine value) for a raw input value, updating ``error``."""
        try:
            clean = coerce(self.field, raw, from_text=isinstance(raw, str))
        except Invalid as exc:
            self.error = str(exc)
            return False, None
        if clean is None and self.required:
            self.error = "is required"
            return False, None
        self.error = ""
        return True, clean

    def _set_value_quietly(self, value: Any) -> None:
        self._from_input = True
        try:
            self.value = value
        finally:
            self._from_input = False

    @observe("value")
    def _on_value(self, change: dict[str, Any]) -> None:
        if not getattr(self, "_from_input", False) and hasattr(self, "input"):
            self.sync_from_value()

    @observe("error")
    def _on_error(self, change: dict[str, Any]) -> None:
        self._error.value = f'<span style="color:#b00020">{html.escape(self.error)}</span>'
        self._error.layout.display = "" if self.error else "none"

    @observe("disabled")
    def _on_disabled(self, change: dict[str, Any]) -> None:
        if hasattr(self.input, "disabled"):
            self.input.disabled = self.disabled

    @observe("visible")
    def _on_visible(self, change: dict[str, Any]) -> None:
        self.layout.display = "" if self.visible else "none"

    @observe("placeholder")
    def _on_placeholder(self, change: dict[str, Any]) -> None:
        if hasattr(self.input, "placeholder"):
            self.input.placeholder = self.placeholder

    @observe("caption", "required")
    def _on_caption(self, change: dict[str, Any]) -> None:
        if hasattr(self, "_caption"):
            self._render_caption()

    def _render_caption(self) -> None:
        star = ' <span style="color:#b00020">*</span>' if self.required else ""
        self._caption.value = f"<b>{html.escape(self.caption)}</b>{star}"
