"""Which control shows a field: the default for each field type, or one chosen by kind.

>>> control_for(field, name="status", kind="radio", caption="Status", width="20em")

``CONTROL_KINDS`` lists the kinds a page's ``control:`` may name (the page validator,
:data:`appbook.server.definitions.pages.CONTROL_KINDS`, keeps the same list; a test checks
they agree). ``KIND_FIELD_TYPES`` says which field types each kind can show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ...server.definitions.models import FieldDef
from .base import FieldControl
from .controls import (
    Checkbox,
    CodeEditor,
    DateField,
    DateTimeField,
    FileField,
    MultiSelect,
    NumberField,
    Password,
    RadioButtons,
    ReferenceField,
    Select,
    Slider,
    Switch,
    TextArea,
    TextField,
    TimeField,
)

if TYPE_CHECKING:
    from ...server.engine import Appbook

_TEXTUAL = frozenset({"string", "text", "email", "uri"})

#: kind -> (control class, field types it can show), in the order pages list them
_KINDS: dict[str, tuple[type[FieldControl], frozenset[str]]] = {
    "text": (TextField, _TEXTUAL),
    "password": (Password, frozenset({"string", "text"})),
    "textarea": (TextArea, frozenset({"string", "text"})),
    "code": (CodeEditor, frozenset({"json", "string", "text"})),
    "number": (NumberField, frozenset({"integer", "number"})),
    "slider": (Slider, frozenset({"integer", "number"})),
    "checkbox": (Checkbox, frozenset({"boolean"})),
    "switch": (Switch, frozenset({"boolean"})),
    "select": (Select, frozenset({"enum"})),
    "radio": (RadioButtons, frozenset({"enum"})),
    "multiselect": (MultiSelect, frozenset({"array"})),
    "date": (DateField, frozenset({"date"})),
    "time": (TimeField, frozenset({"time"})),
    "datetime": (DateTimeField, frozenset({"datetime"})),
    "reference": (ReferenceField, frozenset({"reference"})),
    "file": (FileField, frozenset({"file"})),
}

CONTROL_KINDS: tuple[str, ...] = tuple(_KINDS)
CONTROL_CLASSES: Mapping[str, type[FieldControl]] = MappingProxyType(
    {kind: cls for kind, (cls, _types) in _KINDS.items()}
)
KIND_FIELD_TYPES: Mapping[str, frozenset[str]] = MappingProxyType(
    {kind: types for kind, (_cls, types) in _KINDS.items()}
)
#: field type -> the kind shown when a page names none
DEFAULT_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "string": "text",
        "text": "textarea",
        "integer": "number",
        "number": "number",
        "boolean": "checkbox",
        "date": "date",
        "time": "time",
        "datetime": "datetime",
        "enum": "select",
        "reference": "reference",
        "array": "multiselect",
        "file": "file",
        "uri": "text",
        "email": "text",
        "json": "code",
    }
)
#: the properties :func:`control_for` applies
PROPS = ("caption", "disabled", "visible", "required", "placeholder", "width", "css_class")
_TRAIT_PROPS = frozenset({"caption", "disabled", "visible", "required", "placeholder"})
_APP_KINDS = frozenset({"reference", "file"})


def default_control(field: FieldDef) -> type[FieldControl]:
    """The control class that shows ``field`` when no kind is asked for."""
    return CONTROL_CLASSES[DEFAULT_KINDS[field.type]]


def kinds_for(field_type: str) -> tuple[str, ...]:
    """The control kinds that can show a field of ``field_type``."""
    return tuple(k for k, types in KIND_FIELD_TYPES.items() if field_type in types)


def control_for(
    field: FieldDef,
    *,
    name: str,
    kind: str | None = None,
    app: Appbook | None = None,
    options: Mapping[str, Any] | None = None,
    **props: Any,
) -> FieldControl:
    """A control of ``kind`` (the field type's default when None) bound to ``field``.

    ``props`` are :data:`PROPS` (None means "not set"): ``caption``, ``disabled``,
    ``visible``, ``required`` and ``placeholder`` set the traits of the same name, ``width``
    the layout width and ``css_class`` (space-separated names) CSS classes. ``options``
    go to the control's constructor (``on_text`` for a switch, ``download_url`` for a file).
    ``app`` reaches the controls that read the data layer (reference, file).

    Raises ``ValueError`` for an unknown kind, a kind that cannot show the field's type,
    or an unknown property.
    """
    kind = kind or DEFAULT_KINDS[field.type]
    if kind not in _KINDS:
        raise ValueError(f"unknown control kind {kind!r} (kinds: {', '.join(CONTROL_KINDS)})")
    cls, types = _KINDS[kind]
    if field.type not in types:
        fitting = ", ".join(kinds_for(field.type))
        raise ValueError(
            f"control kind {kind!r} cannot show {field.type} field {name!r} (kinds: {fitting})"
        )
    unknown = sorted(set(props) - set(PROPS))
    if unknown:
        raise ValueError(
            f"unknown control properties {', '.join(unknown)} (properties: {', '.join(PROPS)})"
        )
    given = {k: v for k, v in props.items() if v is not None}
    kwargs: dict[str, Any] = {k: v for k, v in given.items() if k in _TRAIT_PROPS}
    kwargs.update(options or {})
    if kind in _APP_KINDS:
        kwargs["app"] = app
    control = cls(field, name=name, **kwargs)
    if "width" in given:
        control.layout.width = given["width"]
    for css in _classes(given.get("css_class", ())):
        control.add_class(css)
    return control


def _classes(value: str | Iterable[str]) -> list[str]:
    names = value.split() if isinstance(value, str) else list(value)
    return [n for n in names if n]
