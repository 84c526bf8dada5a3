"""Pydantic models of component definitions (``*.component.yaml``).

These check the *shape* of a definition: option names and their types. Rules that span
options or components (an enum default among its choices, references to known components)
live in :mod:`appbook.server.definitions.checks`, so each problem gets its own path and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_serializer,
    field_validator,
)

from .dataflows import DataflowDef
from .pages import PageDef
from .workflows import WorkflowDef

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=60)]
Number = StrictInt | StrictFloat

FieldType = Literal[
    "string",
    "text",
    "integer",
    "number",
    "boolean",
    "date",
    "time",
    "datetime",
    "enum",
    "reference",
    "array",
    "file",
    "uri",
    "email",
    "json",
]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]
ArrayOf = Literal[
    "string", "text", "integer", "number", "boolean", "date", "time", "datetime",
    "uri", "email", "reference", "file",
]  # fmt: skip

SYSTEM_FIELDS = ("id", "created_at", "created_by", "updated_at", "updated_by", "version")
TEXT_TYPES = frozenset({"string", "text", "uri", "email"})
NUMERIC_TYPES = frozenset({"integer", "number"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    """One enum choice: its stored value and its label."""

    value: StrictInt | StrictStr
    label: StrictStr


class FieldDef(_Strict):
    """One field of a component's data model."""

    type: FieldType
    title: StrictStr | None = None
    description: StrictStr | None = None
    required: StrictBool = False
    unique: StrictBool = False
    indexed: StrictBool = False
    virtual: StrictBool = False
    default: Any = None
    min: Number | None = None
    max: Number | None = None
    min_length: Annotated[StrictInt, Field(ge=0)] | None = None
    max_length: Annotated[StrictInt, Field(ge=1)] | None = None
    pattern: StrictStr | None = None
    choices: tuple[Choice, ...] | None = None
    to: Name | None = None
    of: ArrayOf | None = None
    accept: tuple[StrictStr, ...] | None = None
    max_size: StrictInt | StrictStr | None = None

    @field_validator("choices", mode="before")
    @classmethod
    def _choices_from_mapping(cls, value: Any) -> Any:
        # YAML writes choices as {value: label}; snapshots store a list of pairs so
        # integer values survive a JSON round trip.
        if isinstance(value, dict):
            return [{"value": k, "label": v} for k, v in value.items()]
        return value

    @field_serializer("choices")
    def _choices_as_pairs(self, choices: tuple[Choice, ...] | None) -> Any:
        if choices is None:
            return None
        return [{"value": c.value, "label": c.label} for c in choices]

    @property
    def stored(self) -> bool:
        """Whether the field has a column."""
        return not self.virtual

    @property
    def label(self) -> str:
        """A human name for the field (its title, else nothing)."""
        return self.title or ""

    def choice_values(self) -> list[int | str]:
        """The allowed values of an enum field."""
        return [c.value for c in self.choices or ()]


class ComponentDef(_Strict):
    """A component: a typed data model plus pages, dataflows, workflows and access rules."""

    name: Name
    title: StrictStr | None = None
    description: StrictStr | None = None
    fields: dict[Name, FieldDef] = Field(default_factory=dict)
    # Later parts (UI, dataflows, workflows, access) validate these sections further.
    pages: dict[Name, PageDef] | None = None
    dataflows: dict[Name, DataflowDef] | None = None
    workflows: dict[Name, WorkflowDef] | None = None
    access: dict[str, Any] | None = None
    scripts: dict[str, Any] | StrictStr | None = None

    @field_validator("fields", "pages", mode="before")
    @classmethod
    def _from_named_list(cls, value: Any) -> Any:
        # Snapshots store fields and pages as lists: JSONB does not keep key order, and field
        # order and page order (the first page is the app's home) matter.
        if isinstance(value, list) and all(isinstance(v, dict) and "name" in v for v in value):
            return {v["name"]: {k: x for k, x in v.items() if k != "name"} for v in value}
        return value

    @field_serializer("fields")
    def _fields_as_list(self, fields: dict[str, FieldDef]) -> Any:
        return _named_list(fields, exclude_defaults=True)

    @field_serializer("pages")
    def _pages_as_list(self, pages: dict[str, PageDef] | None) -> Any:
        return (
            None if pages is None else _named_list(pages, exclude_defaults=True, exclude_none=True)
        )

    def stored_fields(self) -> dict[str, FieldDef]:
        """Fields that have a column, in definition order."""
        return {k: f for k, f in self.fields.items() if f.stored}

    def snapshot(self) -> dict[str, Any]:
        """The JSON form stored in publications (round-trips through model_validate)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True, by_alias=True)


def _named_list(items: Mapping[str, BaseModel], **dump: Any) -> list[dict[str, Any]]:
    """``{name: model}`` as ``[{"name": name, **model}]``, in order."""
    return [{"name": name, **item.model_dump(mode="json", **dump)} for name, item in items.items()]
