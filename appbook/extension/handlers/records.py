"""``components/{name}/records``: query, create, read, update, delete, import, export."""

from __future__ import annotations

import io
from typing import Any, cast

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...server.bulk import detect_format, iter_export
from ...server.point_reads import MISS, PointReader
from ...server.records import record_missing
from ..base import AppbookHandler, BadRequest
from ..models import ImportResult, RecordPage
from ..openapi import COLON, Param, operation

NAME = r"(?P<name>[a-z][a-z0-9_]*)"
RECORD = {
    "type": "object",
    "additionalProperties": True,
    "description": "Field -> value (see the component's record_schema).",
}
QUERY_PARAMS = (
    Param("where", {"type": "string"}, 'JSON filter, e.g. {"amount": {"gt": 10}}'),
    Param("order_by", {"type": "string"}, "Comma-separated fields, - for descending"),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}),
    Param("offset", {"type": "integer", "minimum": 0, "default": 0}),
    Param("cursor", {"type": "string"}, "next_cursor of the previous page"),
    Param("fields", {"type": "string"}, "Comma-separated fields to return (id always)"),
    Param("total", {"type": "boolean", "default": False}, "Also count every matching record"),
)
IF_MATCH = Param("If-Match", {"type": "string"}, 'The ETag ("version") you read', where="header")


def etag(record: dict[str, Any]) -> str:
    """The ETag of a record: its version, quoted."""
    return f'"{record["version"]}"'


class RecordsHandler(AppbookHandler):
    """Query and create records of a component."""

    @web.authenticated
    @authorized
    @operation(
        "Query records (one page)", response=RecordPage, params=QUERY_PARAMS, tags=("records",)
    )
    async def get(self, name: str) -> None:
        """A page of records with ``next_cursor`` (and ``total`` when asked)."""
        page = await self.run(
            self.engine.records.query,
            name,
            where=self.json_arg("where"),
            order_by=self._list_arg("order_by"),
            limit=self.int_arg("limit", 100),
            offset=self.int_arg("offset", 0),
            cursor=self.get_argument("cursor", None) or None,
            fields=self._list_arg("fields"),
            total=self.bool_arg("total"),
        )
        body: dict[str, Any] = {"items": page.items, "next_cursor": page.next_cursor}
        if page.total is not None:
            body["total"] = page.total
        self.reply(body)

    @web.authenticated
    @authorized
    @operation(
        "Create a record",
        body=RECORD,
        response=RECORD,
        status=201,
        errors=(400, 403, 404, 409, 413, 422, 503),
        tags=("records",),
    )
    async def post(self, name: str) -> None:
        """Validate and insert; 201 with the record, its ``Location`` and ``ETag``."""
        values = self.raw_json()
        if not isinstance(values, dict):
            raise BadRequest("expected a JSON object of field -> value")
        engine = self.engine
        record = await self.run(engine.records.create, name, values, actor=engine.actor)
        self.set_header("Location", f"{self.request.path}/{record['id']}")
        self.set_header("ETag", etag(record))
        self.reply(record, 201)

    def _list_arg(self, name: str) -> list[str] | None:
        values = [v for raw in self.get_arguments(name) for v in raw.split(",") if v.strip()]
        return [v.strip() for v in values] or None


class RecordHandler(AppbookHandler):
    """One record."""

    @web.authenticated
    @authorized
    @operation("Read a record (ETag: its version)", response=RECORD, tags=("records",))
    async def get(self, name: str, record_id: str) -> None:
        """The record, with ``ETag``."""
        rid = int(record_id)
        reader: PointReader | None = self.settings.get("appbook_point_reader")
        found = MISS if reader is None else await reader.get(name, rid)
        if found is None:
            raise record_missing(name, rid)
        record = (
            await self.run(self.engine.records.get, name, rid)
            if found is MISS
            else cast(dict[str, Any], found)
        )
        self.set_header("ETag", etag(record))
        self.reply(record)

    @web.authenticated
    @authorized
    @operation(
        "Change fields of a record; If-Match or a version field makes it conditional",
        body=RECORD,
        response=RECORD,
        params=(IF_MATCH,),
        errors=(400, 403, 404, 409, 413, 422, 503),
        tags=("records",),
    )
    async def patch(self, name: str, record_id: str) -> None:
        """Partial update; 409 when the version is stale."""
        values = self.raw_json()
        if not isinstance(values, dict):
            raise BadRequest("expected a JSON object of field -> value")
        engine = self.engine
        record = await self.run(
            engine.records.update,
            name,
            int(record_id),
            values,
            actor=engine.actor,
            version=self._if_match(),
        )
        self.set_header("ETag", etag(record))
        self.reply(record)

    @web.authenticated
    @authorized
    @operation(
        "Delete a record",
        status=204,
        params=(IF_MATCH,),
        errors=(400, 403, 404, 409, 503),
        tags=("records",),
    )
    async def delete(self, name: str, record_id: str) -> None:
        """204; 409 when still referenced or the version is stale."""
        engine = self.engine
        await self.run(
            engine.records.delete,
            name,
            int(record_id),
            actor=engine.actor,
            version=self._if_match(),
        )
        self.set_status(204)
        self.finish()

    def _if_match(self) -> int | None:
        raw = self.request.headers.get("If-Match")
        if raw is None or raw.strip() == "*":
            return None
        text = raw.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            raise BadRequest(
                f"If-Match must be an ETag returned by this API (a quoted version), got {raw!r}"
            )
        return int(text)


class ImportHandler(AppbookHandler):
    """Bulk import: every row validated, all written or none."""

    @web.authenticated
    @authorized
    @operation(
        "Import CSV or JSON lines (all rows or none; errors by row)",
        body={"type": "string"},
        body_types=("text/csv", "application/x-ndjson", "application/octet-stream"),
        response=ImportResult,
        status=201,
        params=(
            Param(
                "format", {"type": "string", "enum": ["csv", "jsonl"]}, "Default: from Content-Type"
            ),
        ),
        errors=(400, 403, 404, 409, 413, 422, 503),
        tags=("records",),
    )
    async def post(self, name: str) -> None:
        """Create every row of the body."""
        fmt = self.get_argument("format", None) or _format_of(
            self.request.headers.get("Content-Type", "")
        )
        fmt = detect_format("", fmt)
        engine = self.engine
        result = await self.run(engine[name].import_rows, io.BytesIO(self.request.body), format=fmt)
        self.reply(result.__dict__, 201)


class ExportHandler(AppbookHandler):
    """Streamed export of (filtered) records."""

    @web.authenticated
    @authorized
    @operation(
        "Export records as CSV or JSON lines, streamed",
        response={"type": "string"},
        response_types=("text/csv", "application/x-ndjson"),
        params=(
            Param("format", {"type": "string", "enum": ["csv", "jsonl"], "default": "csv"}),
            QUERY_PARAMS[0],
        ),
        tags=("records",),
    )
    async def get(self, name: str) -> None:
        """Write pages of records as they are read."""
        fmt = detect_format("", self.get_argument("format", "csv"))
        where = self.json_arg("where")
        engine = self.engine
        await self.run(engine.registry.get, name)  # 404 before any byte is sent
        self.set_header(
            "Content-Type", "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
        )
        self.set_header("Content-Disposition", f'attachment; filename="{name}.{fmt}"')
        pieces = iter_export(engine, name, format=fmt, where=where)
        while (piece := await self.run(next, pieces, None)) is not None:
            self.write(piece[0])
            await self.flush()  # each page leaves before the next is read
        self.finish()


def _format_of(content_type: str) -> str | None:
    kind = content_type.split(";")[0].strip().lower()
    return {
        "text/csv": "csv",
        "application/x-ndjson": "jsonl",
        "application/jsonl": "jsonl",
        "application/json": "jsonl",
    }.get(kind)


routes = [
    (rf"/appbook/api/components/{NAME}/records", RecordsHandler),
    (rf"/appbook/api/components/{NAME}/records{COLON}import", ImportHandler),
    (rf"/appbook/api/components/{NAME}/records{COLON}export", ExportHandler),
    (rf"/appbook/api/components/{NAME}/records/(?P<record_id>[0-9]+)", RecordHandler),
]
