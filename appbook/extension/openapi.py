"""OpenAPI 3.1 from the handlers themselves.

Each handler method carries an :func:`operation` describing its parameters, body model and
response model; :func:`build` walks the URL table and the same pydantic models the handlers
validate with, so the document cannot drift from the code (a test checks that every method
of every route is described).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from .models import ErrorResponse

F = TypeVar("F", bound=Callable[..., Any])
# Custom methods (``records:import``): clients may percent-encode the colon.
COLON = "(?::|%3[Aa])"
METHODS = ("get", "post", "patch", "put", "delete")
BINARY = {"type": "string", "format": "binary"}
ERRORS = {
    "400": "Malformed request (bad JSON, bad query parameter)",
    "403": "Not authenticated or not allowed",
    "404": "No such component, record, publication or file",
    "409": "Conflict: unique value, stale version, still referenced",
    "413": "Body over the size limit",
    "422": "Invalid values; `fields` names each",
    "503": "A dependency (database, Redis) is down",
}


@dataclass(frozen=True)
class Param:
    """A query or header parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    where: str = "query"
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """What one handler method accepts and answers."""

    summary: str
    response: type[BaseModel] | dict[str, Any] | None = None
    status: int = 200
    also: tuple[int, ...] = ()  # other success statuses with the same body (e.g. 200 for a no-op)
    body: type[BaseModel] | dict[str, Any] | None = None
    body_types: tuple[str, ...] = ("application/json",)
    response_types: tuple[str, ...] = ("application/json",)
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = (400, 403, 404, 422, 503)
    tags: tuple[str, ...] = field(default_factory=tuple)


def operation(summary: str, **kwargs: Any) -> Callable[[F], F]:
    """Describe a handler method for the OpenAPI document."""
    if "params" in kwargs:
        kwargs["params"] = tuple(kwargs["params"])

    def mark(method: F) -> F:
        method.__appbook_operation__ = Operation(summary, **kwargs)  # type: ignore[attr-defined]
        return method

    return mark


def described(handler: type, method: str) -> Operation | None:
    """The operation a handler method declares, if any."""
    fn = getattr(handler, method, None)
    return getattr(fn, "__appbook_operation__", None)


def path_template(pattern: str) -> tuple[str, dict[str, str]]:
    """``/appbook/api/components/(?P<name>[^/]+)`` -> ``/appbook/api/components/{name}``,
    with each placeholder's regular expression."""
    names = dict(re.findall(r"\(\?P<([a-z_]+)>([^)]*)\)", pattern))
    template = re.sub(r"\(\?P<([a-z_]+)>[^)]*\)", r"{\1}", pattern.replace(COLON, ":")).rstrip("$")
    return template.replace("\\", ""), names


def build(
    routes: Iterable[tuple[str, type]],
    *,
    title: str,
    version: str,
    extra_schemas: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for pattern, handler in routes:
        template, names = path_template(pattern)
        item: dict[str, Any] = {}
        for method in METHODS:
            op = described(handler, method)
            if op is not None:
                item[method] = _operation(op, names, schemas, f"{method}_{_op_id(template)}")
        if item:
            paths[template] = item
    schemas.update(extra_schemas or {})
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`token <jupyter server token>`",
                }
            },
        },
        "security": [{"token": []}],
    }


def _op_id(template: str) -> str:
    words = re.sub(r"[{}]", "", template.removeprefix("/appbook/api/")).replace(":", "_")
    return re.sub(r"[^a-zA-Z0-9_]+", "_", words).strip("_") or "root"


def _operation(
    op: Operation, names: dict[str, str], schemas: dict[str, Any], op_id: str
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op_id,
        "tags": list(op.tags) or ["appbook"],
    }
    params = [
        {
            "name": n,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": f"^{regex}$"},
        }
        for n, regex in names.items()
    ]
    for p in op.params:
        spec = {"name": p.name, "in": p.where, "required": p.required, "schema": p.schema}
        if p.description:
            spec["description"] = p.description
        params.append(spec)
    if params:
        out["parameters"] = params
    if op.body is not None:
        schema = _schema(op.body, schemas)
        out["requestBody"] = {
            "required": True,
            "content": {t: {"schema": schema if "json" in t else BINARY} for t in op.body_types},
        }
    responses: dict[str, Any] = {}
    if op.status == 204:
        responses["204"] = {"description": "Done"}
    else:
        schema = _schema(op.response, schemas) if op.response is not None else {}
        content = {t: {"schema": schema if "json" in t else BINARY} for t in op.response_types}
        for code in (op.status, *op.also):
            responses[str(code)] = {"description": op.summary, "content": content}
    error_schema = _schema(ErrorResponse, schemas)
    for code in op.errors:
        responses[str(code)] = {
            "description": ERRORS.get(str(code), "Error"),
            "content": {"application/json": {"schema": error_schema}},
        }
    out["responses"] = responses
    return out


def _schema(model: type[BaseModel] | dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas[name] = sub
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}
