"""``files``: upload (streamed into the encrypted store), download, describe, list, delete.

An upload's body never sits whole in memory or on disk in clear: tornado hands each chunk
to :meth:`FilesHandler.data_received`, a bounded :class:`ChunkPipe` carries it to a pool
thread running :meth:`FileStore.put`, which encrypts as it reads; multipart bodies are
parsed on the way by :class:`MultipartReader`. Limits apply as bytes arrive: a
``Content-Length`` over the limit is refused before any byte is read, and a body passing it
mid-way is answered 413 at once (the store refuses too, keeping nothing).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from functools import partial
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError

from ...server.errors import AppbookError, PayloadTooLarge, ValidationError
from ...server.files import FileInfo as StoredInfo
from ...server.files import FileStore, format_size, parse_size
from ..base import AppbookHandler, BadRequest
from ..models import FileInfo, FileList
from ..openapi import Param, operation
from ..uploads import (
    FORM_DEFAULT,
    MULTIPART_OVERHEAD,
    ChunkPipe,
    MultipartReader,
    content_disposition,
    multipart_boundary,
)

FILE_ID = r"(?P<file_id>[^/]+)"
UPLOAD_PARAMS = (
    Param("name", {"type": "string"}, "File name (required for a raw body)"),
    Param("folder", {"type": "string", "default": ""}, "Folder label, e.g. reports/2026"),
    Param("component", {"type": "string"}, "With field: apply that file field's accept/max_size"),
    Param("field", {"type": "string"}, "A file field of component"),
)


class _FilesBase(AppbookHandler):
    """The server's one file store (the engine shares it with every user view)."""

    def store(self) -> FileStore:
        """Call in the pool: the first use reads (or creates) the key file."""
        store: FileStore = self.settings["appbook_engine"].file_store
        return store


@web.stream_request_body
class FilesHandler(_FilesBase):
    """List files of a folder; upload one (streamed)."""

    _pipe: ChunkPipe | None = None
    _upload: asyncio.Future[StoredInfo] | None = None
    _received = 0
    _body_limit = 0
    _body_done = False
    _gone = False

    @web.authenticated
    @authorized
    @operation(
        "List the files of a folder, oldest first",
        response=FileList,
        params=(Param("folder", {"type": "string", "default": ""}, "Folder label"),),
        errors=(403, 422, 503),
        tags=("files",),
    )
    async def get(self) -> None:
        """``{"items": [FileInfo, ...]}``."""
        folder = self.get_argument("folder", "")
        infos = await self.run(lambda: self.store().list(folder))
        self.reply({"items": [info.to_dict() for info in infos]})

    @web.authenticated
    @authorized
    @operation(
        "Upload a file: multipart/form-data with one file part, or a raw body with ?name= "
        "(its Content-Type is the media type). Streamed and encrypted; 413 over the limit "
        "(the field's max_size, else the store's), 422 for a type the field does not accept",
        body={"type": "string", "format": "binary"},
        body_types=("multipart/form-data", "application/octet-stream"),
        response=FileInfo,
        status=201,
        params=UPLOAD_PARAMS,
        errors=(400, 403, 404, 413, 422, 503),
        tags=("files",),
    )
    async def post(self) -> None:
        """201 with the stored file's metadata and its ``Location``."""
        self._body_done = True
        assert self._pipe is not None and self._upload is not None
        self._pipe.end()
        info = await self._upload
        self.set_header("Location", f"{self.request.path}/{info.id}")
        self.reply(info.to_dict(), 201)

    async def prepare(self) -> None:  # type: ignore[override]
        """For uploads: authenticate and authorise before any byte is read, then start."""
        if self.request.method != "POST":
            await super().prepare()
            return
        # AppbookHandler.prepare limits JSON bodies; an upload has its own limit.
        self.request_id = self.request.headers.get("X-Request-Id") or uuid.uuid4().hex
        self.set_header("X-Request-Id", self.request_id)
        await super(AppbookHandler, self).prepare()
        user = self.current_user
        if not user or not await ensure_async(
            self.authorizer.is_authorized(self, user, "write", self.auth_resource)
        ):
            raise web.HTTPError(403, f"User is not authorized to write on {self.auth_resource}.")
        await self._start_upload()

    async def data_received(self, chunk: bytes) -> None:
        """Count and forward a piece of the upload; 413 as soon as the limit is passed."""
        if self._pipe is None or self._finished:
            return
        self._received += len(chunk)
        if self._received > self._body_limit:
            self._pipe.abort()
            self._answer(PayloadTooLarge(f"upload is larger than the limit of {self._limit_text}"))
            return
        await self._pipe.send(chunk)

    def on_connection_close(self) -> None:
        """The client left: end the upload (nothing is kept)."""
        self._gone = True
        if self._pipe is not None:
            self._pipe.abort()
        super().on_connection_close()

    def on_finish(self) -> None:
        """An upload answered early never completes its body: release its thread."""
        if self._pipe is not None and not self._body_done:
            self._pipe.abort()
        super().on_finish()

    async def _start_upload(self) -> None:
        component = self.get_argument("component", None) or None
        field = self.get_argument("field", None) or None
        if (component is None) != (field is None):
            raise BadRequest("give both 'component' and 'field' (a file field), or neither")
        accept, max_size = await self.run(self._field_limits, component, field)
        store = await self.run(self.store)
        limit = store.default_max_size if max_size is None else parse_size(max_size)
        self._limit_text = f"{format_size(limit)} ({limit} bytes)"
        kind = self.request.headers.get("Content-Type", "")
        boundary = multipart_boundary(kind)
        name = self.get_argument("name", None) or None
        if name is None and not boundary:
            raise BadRequest("give the file name as ?name= (or send multipart/form-data)")
        self._body_limit = limit + (MULTIPART_OVERHEAD if boundary else 0)
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self._body_limit:
            raise PayloadTooLarge(
                f"upload of {length} bytes is larger than the limit of {self._limit_text}"
            )
        if isinstance(self.request.connection, HTTP1Connection):
            # Our own check answers 413; tornado's (400, closing) only backs it up.
            self.request.connection.set_max_body_size(2 * self._body_limit + (1 << 20))
        options: dict[str, Any] = {
            "folder": self.get_argument("folder", ""),
            "actor": self.engine.actor,
            "accept": accept,
            "max_size": limit,
            "field": field or "file",
        }
        pipe = self._pipe = ChunkPipe()
        if boundary:
            job = partial(_put_multipart, store, pipe, boundary, name, options)
        else:
            media = None if kind.split(";")[0].strip().lower() in ("", FORM_DEFAULT) else kind
            job = partial(store.put, pipe, name=name or "", media_type=media, **options)
        pool = self.settings.get("appbook_wait_executor") or self.executor
        self._upload = asyncio.get_running_loop().run_in_executor(pool, job)
        self._upload.add_done_callback(self._upload_done)

    def _field_limits(
        self, component: str | None, field: str | None
    ) -> tuple[tuple[str, ...] | None, int | str | None]:
        if component is None or field is None:
            return None, None
        fields = self.engine.registry.get(component).definition.fields
        spec = fields.get(field)
        if spec is None or "file" not in (spec.type, spec.of):
            names = ", ".join(n for n, f in fields.items() if "file" in (f.type, f.of)) or "none"
            raise ValidationError(
                {"field": [f"{component}.{field} is not a file field (file fields: {names})"]}
            )
        return spec.accept, spec.max_size

    def _upload_done(self, future: asyncio.Future[StoredInfo]) -> None:
        if future.cancelled():
            return
        error = future.exception()  # retrieved here even when nobody awaits it
        assert self._pipe is not None
        self._pipe.stop()
        if error is not None and not (self._body_done or self._finished or self._gone):
            self._answer(error)  # e.g. 422 (type not accepted) while the body still arrives

    def _answer(self, error: BaseException) -> None:
        self.log_exception(type(error), error, error.__traceback__)
        self.send_error(500, exc_info=(type(error), error, error.__traceback__))


def _put_multipart(
    store: FileStore,
    chunks: Iterable[bytes],
    boundary: bytes,
    name: str | None,
    options: dict[str, Any],
) -> StoredInfo:
    """Store the file part of a multipart body (runs in the pool)."""
    reader = MultipartReader(chunks, boundary)
    headers = reader.file_part()
    media = headers.get("Content-Type")
    file_name = name or headers.get_filename() or ""
    return store.put(reader.content(), name=file_name, media_type=media, **options)


class FileHandler(_FilesBase):
    """One file: its bytes, or its removal."""

    @property
    def content_security_policy(self) -> str:
        # Never let a stored HTML or SVG file run script in the server's origin.
        return super().content_security_policy + "; sandbox"

    @web.authenticated
    @authorized
    @operation(
        "Download a file, streamed, with its media type as an attachment "
        "(metadata: GET files/{file_id}/meta)",
        response={"type": "string", "format": "binary"},
        response_types=("application/octet-stream",),
        errors=(403, 404, 503),
        tags=("files",),
    )
    async def get(self, file_id: str) -> None:
        """The decrypted bytes; a chunk leaves only once the next one decrypted cleanly."""
        store = await self.run(self.store)
        info = await self.run(store.stat, file_id)
        chunks = await self.run(store.open, file_id)
        ahead = await self.run(next, chunks, None)  # a missing object fails before headers
        self.set_header("Content-Type", info.media_type)
        self.set_header("Content-Length", str(info.size))
        self.set_header("Content-Disposition", content_disposition(info.name))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("ETag", f'"{info.sha256}"')
        try:
            while ahead is not None:
                following = await self.run(next, chunks, None)
                self.write(ahead)
                await self.flush()
                ahead = following
        except StreamClosedError:
            return  # the client left
        except AppbookError as exc:
            # Headers are out: cut the connection so the client sees a short body.
            self.log.error("download of %s stopped: %s", file_id, exc.message)
            if self.request.connection is not None:
                self.request.connection.close()  # type: ignore[attr-defined]
            return
        self.finish(set_content_type=info.media_type)

    @web.authenticated
    @authorized
    @operation("Delete a file", status=204, errors=(403, 404, 503), tags=("files",))
    async def delete(self, file_id: str) -> None:
        """204 (a record still naming the file keeps its id)."""
        await self.run(lambda: self.store().delete(file_id))
        self.set_status(204)
        self.finish()


class FileMetaHandler(_FilesBase):
    """What the store knows about a file."""

    @web.authenticated
    @authorized
    @operation(
        "A file's metadata: name, folder, size, media type, sha256, creator, time",
        response=FileInfo,
        errors=(403, 404, 503),
        tags=("files",),
    )
    async def get(self, file_id: str) -> None:
        """FileInfo."""
        info = await self.run(lambda: self.store().stat(file_id))
        self.reply(info.to_dict())


routes = [
    (r"/appbook/api/files", FilesHandler),
    (rf"/appbook/api/files/{FILE_ID}", FileHandler),
    (rf"/appbook/api/files/{FILE_ID}/meta", FileMetaHandler),
]
