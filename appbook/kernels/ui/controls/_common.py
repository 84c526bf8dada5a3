"""What the field controls of this package share: the input/value plumbing and choice lists.

:class:`InputControl` refines the :class:`~appbook.kernels.ui.base.FieldControl` contract in
one way: a value set from code is normalised to engine terms and shown, and the engine's
message appears if it is invalid, but an *empty* value set from code is never an error
("is required" waits for the user or for :meth:`check`). Input changes made while the
control writes its own input are ignored, so only the user's edits flow back into ``value``.
:class:`UnsetInputControl` is for inputs that cannot show "empty" (tick boxes, sliders).
"""

from __future__ import annotations

import html
from typing import Any, ClassVar

import ipywidgets as widgets

from ....server.definitions.models import FieldDef
from ....server.validation import Invalid, coerce
from ..base import FieldControl

#: Styles the controls rely on; an ``HTML`` widget holding them applies them page-wide.
CONTROLS_CSS = """<style>
.appbook-code textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12px; }
.appbook-switch button { border-radius: 1em; min-width: 5em; }
.appbook-hint { color: #666; font-size: 11px; }
</style>"""


def engine_form(field: FieldDef, value: Any) -> tuple[bool, Any, str]:
    """(valid, value in engine terms, message) for a value set from code.

    Text is read as text (as the engine reads imports), except for json fields, whose
    engine value may itself be a string.
    """
    try:
        return (
            True,
            coerce(field, value, from_text=isinstance(value, str) and field.type != "json"),
            "",
        )
    except Invalid as exc:
        return False, value, str(exc)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type (so 2 and 2.0, or naive and aware datetimes, differ)."""
    return type(a) is type(b) and bool(a == b)


def choice_options(field: FieldDef, *, empty: bool) -> list[tuple[str, Any]]:
    """``(label, value)`` pairs of an enum's choices, after ``("", None)`` when ``empty``."""
    pairs: list[tuple[str, Any]] = [(c.label, c.value) for c in field.choices or ()]
    return [("", None), *pairs] if empty else pairs


def select_value(selection: Any, value: Any) -> None:
    """Select ``value`` in a Dropdown/RadioButtons, or nothing if it is not an option."""
    values = [v for _label, v in selection.options]
    if value is not None and any(same(value, v) for v in values):
        selection.value = value
    else:
        selection.index = None


def escape(text: object) -> str:
    """``text`` safe inside HTML text and attribute values."""
    return html.escape(str(text), quote=True)


class InputControl(FieldControl):
    """A field control whose input reports back only what the user changed."""

    #: The field a control is bound to when it is used standalone.
    default_field: ClassVar[FieldDef] = FieldDef(type="string")

    def __init__(self, field: FieldDef | None = None, *, name: str = "", **kwargs: Any) -> None:
        super().__init__(field or self.default_field, name=name, **kwargs)

    def arrange(self, *middle: widgets.Widget) -> None:
        """Lay the control out as its caption, ``middle`` (the input and helpers), its error."""
        self.children = [self._caption, *middle, self._error]

    def watch(self, widget: widgets.Widget, name: str = "value") -> None:
        """Check and publish ``widget``'s ``name`` trait whenever the user changes it."""
        widget.observe(self._input_changed, name)

    def _input_changed(self, change: dict[str, Any]) -> None:
        if not getattr(self, "_writing", False):
            self.sync_to_value()

    def sync_from_value(self) -> None:
        """``value`` changed from code: normalise it, show it, show why if it is invalid."""
        ok, clean, message = engine_form(self.field, self.value)
        if ok and not same(clean, self.value):
            self._set_value_quietly(clean)
        super().sync_from_value()
        self.error = message


class UnsetInputControl(InputControl):
    """A control whose input cannot show "empty" (a tick box, a slider): until the user
    changes it or code sets a value, it reads as empty (None) whatever it displays."""

    _touched = False

    def read_input(self) -> Any:
        """The input's value once set, else None."""
        return self.input.value if self._touched else None

    def _input_changed(self, change: dict[str, Any]) -> None:
        if not getattr(self, "_writing", False):
            self._touched = True
        super()._input_changed(change)

    def sync_from_value(self) -> None:
        """``value`` changed from code: an empty value makes the input unset again."""
        self._touched = self.value is not None
        super().sync_from_value()
