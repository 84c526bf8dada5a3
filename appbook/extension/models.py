"""Pydantic models of the REST API: handlers validate with them, openapi.json is made from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """What went wrong, and where."""

    code: str = Field(
        description="Stable machine code, e.g. validation_failed, conflict, not_found."
    )
    message: str
    fields: dict[str, list[str]] | None = Field(
        None, description="Field -> messages, for 422 and 409."
    )
    problems: list[dict[str, Any]] | None = Field(
        None, description="Definition problems (file, line, path)."
    )


class ErrorResponse(BaseModel):
    """Every error answer."""

    error: ErrorDetail


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class ComponentSummary(BaseModel):
    """A published component in a listing."""

    name: str
    title: str | None = None
    fields: list[str]


class ComponentList(BaseModel):
    """The published components."""

    items: list[ComponentSummary]


class ComponentDetail(BaseModel):
    """A published component: its definition and the JSON Schema of its records."""

    name: str
    title: str | None = None
    definition: dict[str, Any]
    record_schema: dict[str, Any]


class Publication(BaseModel):
    """One publication in the history."""

    number: int
    changed: bool
    kind: str
    created_at: str
    created_by: str
    content_hash: str
    migration: list[str]
    components: list[str]


class PublicationList(BaseModel):
    """The publication history, newest first."""

    items: list[Publication]


class PublishRequest(_Body):
    """Definitions to publish: ``{file name: YAML text}`` (a bundle) or JSON definitions."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"anyOf": [{"required": ["files"]}, {"required": ["definitions"]}]},
    )

    files: dict[str, str] | None = Field(None, description="A YAML bundle: file name -> YAML text.")
    definitions: list[dict[str, Any]] | None = Field(
        None, description="Definitions as JSON objects."
    )
    allow_destructive: bool = False


class RollbackRequest(_Body):
    """Options of a rollback."""

    allow_destructive: bool = False


class RecordPage(BaseModel):
    """One page of records."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None
    total: int | None = None


class ImportResult(BaseModel):
    """What an import wrote."""

    created: int
    first_id: int | None = None
    last_id: int | None = None


class FileInfo(BaseModel):
    """A stored file."""

    id: str
    name: str
    folder: str
    size: int
    media_type: str
    sha256: str
    created_by: str
    created_at: str


class FileList(BaseModel):
    """Files of a folder."""

    items: list[FileInfo]


class Event(BaseModel):
    """A record event from the outbox."""

    seq: int
    component: str
    record_id: int
    op: Literal["create", "update", "delete"]
    changed: list[str]
    version: int
    actor: str
    at: str


class EventPage(BaseModel):
    """Events after ``since``; pass ``last_seq`` back as ``since`` to continue."""

    items: list[Event]
    last_seq: int
