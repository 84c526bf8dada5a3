"""Check the values of a record write against its component's fields, all at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .definitions.models import SYSTEM_FIELDS, ComponentDef
from .validation import Invalid, coerce

WRITABLE_SYSTEM = frozenset({"id", "version"})  # accepted on update, checked by the caller


def prepare(
    defn: ComponentDef,
    values: Mapping[str, Any],
    *,
    partial: bool,
    from_text: bool = False,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Stored values for a write, and every field error found.

    A create (``partial=False``) gets defaults for missing fields and must have every
    required field; an update only checks the fields it names. Virtual fields are accepted
    and not stored. System fields other than ``id``/``version`` (on updates) are refused.
    """
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    if not isinstance(values, Mapping):
        return {}, {"": [f"expected a mapping of field -> value, got {type(values).__name__}"]}
    for key, raw in values.items():
        if key in SYSTEM_FIELDS:
            if not (partial and key in WRITABLE_SYSTEM):
                errors[key] = ["is set by the engine and cannot be written"]
            continue
        field = defn.fields.get(key)
        if field is None:
            errors[key] = [f"unknown field of {defn.name} (fields: {', '.join(defn.fields)})"]
            continue
        if field.virtual:
            continue
        try:
            clean[key] = coerce(field, raw, from_text=from_text)
        except Invalid as exc:
            errors[key] = [str(exc)]
    for key, field in defn.stored_fields().items():
        if not partial and key not in values and field.default is not None:
            clean[key] = coerce(field, field.default)
        missing = clean.get(key) is None and (not partial or key in values)
        if field.required and missing and key not in errors:
            errors[key] = ["is required"]
    return clean, errors
