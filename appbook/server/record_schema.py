"""JSON Schema of a component's records, from its definition (for APIs and clients)."""

from __future__ import annotations

from typing import Any

from .definitions.models import ComponentDef, FieldDef

_BASE: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "text": {"type": "string"},
    "email": {"type": "string", "format": "email"},
    "uri": {"type": "string", "format": "uri"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "datetime": {"type": "string", "format": "date-time"},
    "reference": {"type": "integer", "minimum": 1},
    "file": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    "json": {},
}
SYSTEM = {
    "id": {"type": "integer", "readOnly": True},
    "created_at": {"type": "string", "format": "date-time", "readOnly": True},
    "created_by": {"type": "string", "readOnly": True},
    "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
    "updated_by": {"type": "string", "readOnly": True},
    "version": {
        "type": "integer",
        "description": "Optimistic concurrency: send it back to update.",
    },
}


def field_schema(field: FieldDef) -> dict[str, Any]:
    """The JSON Schema of one field's values (``null`` allowed unless required)."""
    if field.type == "enum":
        schema: dict[str, Any] = {"enum": field.choice_values()}
        schema["description"] = ", ".join(f"{c.value}: {c.label}" for c in field.choices or ())
    elif field.type == "array":
        item = FieldDef(type=field.of or "string", to=field.to)
        schema = {"type": "array", "items": field_schema(item)}
        _set(schema, minItems=field.min_length, maxItems=field.max_length)
    else:
        schema = dict(_BASE[field.type])
        if field.type in ("string", "text", "email", "uri"):
            _set(
                schema,
                minLength=field.min_length,
                maxLength=field.max_length,
                pattern=field.pattern,
            )
        if field.type in ("integer", "number"):
            _set(schema, minimum=field.min, maximum=field.max)
    _set(schema, title=field.title, description=field.description, default=field.default)
    if field.to:
        schema["x-reference"] = field.to
    if not field.required and field.type != "json":
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def record_schema(defn: ComponentDef) -> dict[str, Any]:
    """The JSON Schema of a record as the API returns it."""
    properties: dict[str, Any] = dict(SYSTEM)
    for name, field in defn.stored_fields().items():
        properties[name] = field_schema(field)
    return {
        "title": defn.title or defn.name,
        "type": "object",
        "properties": properties,
        "required": [*SYSTEM, *(n for n, f in defn.stored_fields().items() if f.required)],
    }


def _set(schema: dict[str, Any], **values: Any) -> None:
    schema.update({k: v for k, v in values.items() if v is not None})
