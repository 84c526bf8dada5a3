"""Streaming request bodies: a bounded pipe from tornado's loop to a pool thread, and a
multipart/form-data reader that parses as bytes arrive. Nothing here holds a whole body.
"""

from __future__ import annotations

import asyncio
import queue
import unicodedata
from collections.abc import Iterable, Iterator
from email.message import Message
from email.parser import HeaderParser
from urllib.parse import quote

from .base import BadRequest

# Room for multipart boundaries and part headers around the file's own bytes.
MULTIPART_OVERHEAD = 64 * 1024
MAX_PART_HEADERS = 16 * 1024
PIPE_DEPTH = 16
# A stalled client gives its pool thread back (and lets the server stop) after this long.
IDLE_TIMEOUT = 60.0
# Clients (tornado, curl) send this type when none is given: the name then decides.
FORM_DEFAULT = "application/x-www-form-urlencoded"


class ClientGone(ConnectionAbortedError):
    """The client went away (or stalled) before the whole body arrived."""


class ChunkPipe:
    """Body chunks from the event loop to the thread storing them, ``depth`` at most in flight.

    The loop side calls :meth:`send`, then :meth:`end` (or :meth:`abort`); the thread
    iterates. When the reader stops early (an error), :meth:`stop` releases the sender.
    """

    _END = object()
    _ABORT = object()

    def __init__(self, depth: int = PIPE_DEPTH) -> None:
        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Semaphore(depth)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stopped = False

    async def send(self, chunk: bytes) -> None:
        """Queue ``chunk``, waiting while ``depth`` chunks are unread (back-pressure)."""
        if not self._stopped:
            await self._room.acquire()
        if not self._stopped:
            self._queue.put(chunk)

    def end(self) -> None:
        """The body is complete."""
        self._queue.put(self._END)

    def abort(self) -> None:
        """The body will never be complete: the reader raises :class:`ClientGone`."""
        self._queue.put(self._ABORT)

    def stop(self) -> None:
        """The reader is done (loop thread): drop further chunks, wake a waiting sender."""
        self._stopped = True
        self._room.release()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                item = self._queue.get(timeout=IDLE_TIMEOUT)
            except queue.Empty:
                raise ClientGone(f"no upload data for {IDLE_TIMEOUT:.0f} s") from None
            if item is self._END:
                return
            if item is self._ABORT:
                raise ClientGone("the client closed the connection during the upload")
            try:
                self._loop.call_soon_threadsafe(self._room.release)
            except RuntimeError:  # the loop is closed: the server is stopping
                raise ClientGone("the server is stopping") from None
            assert isinstance(item, bytes)
            yield item


class MultipartReader:
    """Streaming ``multipart/form-data`` parser for a body holding one file part.

    Parts without a filename (plain form fields) are skipped; a second file part is refused.
    """

    def __init__(self, chunks: Iterable[bytes], boundary: bytes) -> None:
        self._chunks = iter(chunks)
        self._buf = bytearray(b"\r\n")  # so the first delimiter reads like the others
        self._delimiter = b"\r\n--" + boundary

    def file_part(self) -> Message:
        """Read up to the file part's content; returns the part's headers."""
        self._until(self._delimiter, MAX_PART_HEADERS)  # the preamble
        while (headers := self._next_part()) is not None:
            if headers.get_filename() is not None:
                return headers
            for _ in self._content():
                pass
        raise BadRequest("the multipart body has no file part (a part with a filename)")

    def content(self) -> Iterator[bytes]:
        """The file part's bytes, then the rest of the body is read and checked."""
        yield from self._content()
        while (headers := self._next_part()) is not None:
            if headers.get_filename() is not None:
                raise BadRequest("send one file per upload; the multipart body has two")
            for _ in self._content():
                pass
        while self._fill():
            self._buf.clear()  # the epilogue

    def _next_part(self) -> Message | None:
        """After a delimiter: the next part's headers, or None after the closing one."""
        after = self._take(2)
        if after == b"--":
            return None
        if after != b"\r\n":
            raise BadRequest("malformed multipart body: bad text after a boundary")
        self._buf[:0] = after  # a part without headers starts with the blank line at once
        block = self._until(b"\r\n\r\n", MAX_PART_HEADERS)
        return HeaderParser().parsestr(block.decode("utf-8", "replace").lstrip("\r\n"))

    def _content(self) -> Iterator[bytes]:
        """Bytes up to the next delimiter (consumed), keeping a possible partial one back."""
        keep = len(self._delimiter) - 1
        while (at := self._buf.find(self._delimiter)) < 0:
            if len(self._buf) > keep:
                yield bytes(self._buf[:-keep])
                del self._buf[:-keep]
            if not self._fill():
                raise BadRequest("malformed multipart body: it ends inside a part")
        if at:
            yield bytes(self._buf[:at])
        del self._buf[: at + len(self._delimiter)]

    def _until(self, marker: bytes, limit: int) -> bytes:
        while (at := self._buf.find(marker)) < 0:
            if len(self._buf) > limit or not self._fill():
                raise BadRequest("malformed multipart body: a boundary or header end is missing")
        data = bytes(self._buf[:at])
        del self._buf[: at + len(marker)]
        return data

    def _take(self, size: int) -> bytes:
        while len(self._buf) < size:
            if not self._fill():
                raise BadRequest("malformed multipart body: it ends after a boundary")
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def _fill(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        self._buf += chunk
        return True


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact name in ``filename*``."""
    printable = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))
    ascii_name = unicodedata.normalize("NFKD", printable).encode("ascii", "ignore").decode()
    fallback = "".join("_" if ch in '"\\' else ch for ch in ascii_name).strip()
    if not fallback or (fallback.startswith(".") and not printable.startswith(".")):
        fallback = "download" + fallback  # nothing ASCII before the extension
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(printable, safe='')}"


def multipart_boundary(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` type, None for any other type."""
    message = Message()
    message["Content-Type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 70:
        raise BadRequest("multipart/form-data needs a boundary parameter (1 to 70 characters)")
    return boundary.encode("latin-1", "replace")
