"""The file store: encrypted bytes in an fsspec file system, metadata in ``appbook_files``.

Objects live at ``{root}/objects/{id[:2]}/{id}``; the id is a uuid4 hex string checked before
any path is built, so neither names nor ids can point outside the store. A write streams the
encrypted bytes to ``{root}/tmp/`` and moves them into place once complete, and only then
inserts the metadata row; whatever fails on the way removes what was written, so a file
either exists completely (row and bytes) or not at all.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, BinaryIO, cast

import fsspec
import sqlalchemy as sa
from fsspec.implementations.local import LocalFileSystem

from ..db import read_transaction, write_transaction
from ..errors import CorruptFile, NotFound, PayloadTooLarge
from ..systables import StoredFile, utcnow
from .crypto import KeyRing
from .limits import check_accept, clean_folder, clean_name, format_size, media_type_for, parse_size

FILES = cast(sa.Table, StoredFile.__table__)
FILE_ID = re.compile(r"[0-9a-f]{32}")
READ_SIZE = 1024 * 1024
DEFAULT_MAX_SIZE = 100 * 1024 * 1024
_BATCH = 500

FileData = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]


@dataclass(frozen=True)
class FileInfo:
    """What the store knows about one file (never its bytes)."""

    id: str
    name: str
    folder: str
    size: int
    media_type: str
    sha256: str
    created_by: str
    created_at: datetime
    key_id: str

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> FileInfo:
        """The info held in an ``appbook_files`` row."""
        return cls(**{name: row._mapping[name] for name in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, object]:
        """The JSON shape for API clients (without ``key_id``, an at-rest detail)."""
        data: dict[str, object] = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        del data["key_id"]
        return data


class FileStore:
    """Put, read, describe, list and delete files, encrypted at rest with ``keyring``."""

    def __init__(
        self,
        engine: sa.Engine,
        files_url: str,
        keyring: KeyRing,
        default_max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        """A store at ``files_url``: a local folder or an fsspec URL (``s3://bucket/prefix``)."""
        self.engine = engine
        self.files_url = files_url
        self.keyring = keyring
        self.default_max_size = default_max_size
        fs, root = fsspec.core.url_to_fs(files_url)
        self.fs: Any = fs
        self.root: str = str(root).rstrip("/")
        self._made: set[str] = set()

    def __repr__(self) -> str:
        return f"<FileStore {self.files_url}>"

    def put(
        self,
        data: FileData,
        *,
        name: str,
        folder: str = "",
        media_type: str | None = None,
        actor: str,
        accept: Sequence[str] | None = None,
        max_size: int | str | None = None,
        field: str = "file",
    ) -> FileInfo:
        """Store ``data`` (bytes, a binary file object or an iterable of bytes) as a new file.

        ``accept`` lists allowed media types (``application/pdf``, ``image/*``, ``.pdf``),
        refused with :class:`ValidationError` under ``field`` before anything is read.
        ``max_size`` (bytes or ``"10MB"``; default ``default_max_size``) is enforced while
        streaming: :class:`PayloadTooLarge` as soon as it is passed, nothing left behind.
        """
        clean = clean_name(name)
        folder = clean_folder(folder)
        media_type = media_type_for(clean, media_type, field=field)
        if isinstance(accept, str):
            accept = [accept]
        check_accept(media_type, clean, accept, field=field)
        limit = self.default_max_size if max_size is None else parse_size(max_size)
        file_id = uuid.uuid4().hex
        key_id = self.keyring.current_id
        meter = _Meter(limit, clean)
        plain = meter.count(_chunks(data))
        target = self._object_path(file_id)
        self._write(target, self.keyring.encrypt(plain, context=file_id.encode(), key_id=key_id))
        info = FileInfo(
            id=file_id,
            name=clean,
            folder=folder,
            size=meter.size,
            media_type=media_type,
            sha256=meter.digest.hexdigest(),
            created_by=actor,
            created_at=utcnow(),
            key_id=key_id,
        )
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(FILES.insert().values(**asdict(info)))
        except BaseException:
            self._remove(target)
            raise
        return info

    def stat(self, file_id: str) -> FileInfo:
        """The metadata of ``file_id``; :class:`NotFound` if there is no such file."""
        if _valid_id(file_id):
            with read_transaction(self.engine) as conn:
                row = conn.execute(sa.select(FILES).where(FILES.c.id == file_id)).first()
            if row is not None:
                return FileInfo.from_row(row)
        raise NotFound(f"no file with id {file_id!r}")

    def open(self, file_id: str) -> Iterator[bytes]:
        """The decrypted bytes of ``file_id``, chunk by chunk (:class:`NotFound` at once).

        Iteration raises :class:`CorruptFile` if the stored bytes were altered or are missing.
        """
        return self._plaintext(self.stat(file_id))

    def get(self, file_id: str) -> bytes:
        """All the decrypted bytes of ``file_id`` (use :meth:`open` for large files)."""
        return b"".join(self.open(file_id))

    def delete(self, file_id: str) -> None:
        """Remove ``file_id``'s metadata, then its bytes; :class:`NotFound` if absent."""
        if _valid_id(file_id):
            with write_transaction(self.engine) as conn:
                deleted = conn.execute(FILES.delete().where(FILES.c.id == file_id)).rowcount
            if deleted:
                self._remove(self._object_path(file_id))
                return
        raise NotFound(f"no file with id {file_id!r}")

    def exists(self, file_ids: Iterable[str]) -> set[str]:
        """Which of ``file_ids`` name stored files (malformed ids simply do not exist)."""
        wanted = sorted({i for i in file_ids if _valid_id(i)})
        found: set[str] = set()
        with read_transaction(self.engine) as conn:
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                query = sa.select(FILES.c.id).where(FILES.c.id.in_(batch))
                found.update(conn.execute(query).scalars())
        return found

    def reencrypt(self) -> int:
        """Rewrite every file not under the keyring's current key; returns how many.

        Files stay readable throughout (each is swapped in atomically). A file that fails
        its integrity check stops the run with :class:`CorruptFile` naming it; files done
        before it keep their new key, so running again resumes.
        """
        current = self.keyring.current_id
        count = 0
        for info in self._not_under(current):
            target = self._object_path(info.id)
            sealed = self.keyring.encrypt(
                self._plaintext(info), context=info.id.encode(), key_id=current
            )
            self._write(target, sealed)
            with write_transaction(self.engine) as conn:
                query = FILES.update().where(FILES.c.id == info.id).values(key_id=current)
                updated = conn.execute(query).rowcount
            if updated:
                count += 1
            else:
                self._remove(target)  # deleted while we rewrote it
        return count

    def list(self, folder: str = "") -> builtins.list[FileInfo]:
        """The files directly in ``folder`` (``""`` is the top level), oldest first."""
        folder = clean_folder(folder)
        query = (
            sa.select(FILES)
            .where(FILES.c.folder == folder)
            .order_by(FILES.c.created_at, FILES.c.id)
        )
        with read_transaction(self.engine) as conn:
            return [FileInfo.from_row(row) for row in conn.execute(query)]

    def _not_under(self, key_id: str) -> Iterator[FileInfo]:
        """Files whose key is not ``key_id``, in id order, a page at a time."""
        after = ""
        while True:
            query = (
                sa.select(FILES)
                .where(FILES.c.key_id != key_id, FILES.c.id > after)
                .order_by(FILES.c.id)
                .limit(_BATCH)
            )
            with read_transaction(self.engine) as conn:
                page = [FileInfo.from_row(row) for row in conn.execute(query)]
            yield from page
            if len(page) < _BATCH:
                return
            after = page[-1].id

    def _plaintext(self, info: FileInfo) -> Iterator[bytes]:
        where = f"file {info.id} ({info.name})"
        digest, size = hashlib.sha256(), 0
        try:
            with self.fs.open(self._object_path(info.id), "rb") as stream:
                for chunk in self.keyring.decrypt(stream, context=info.id.encode()):
                    digest.update(chunk)
                    size += len(chunk)
                    yield chunk
        except FileNotFoundError:
            raise CorruptFile(f"{where}: its stored bytes are missing from the store") from None
        except CorruptFile as exc:
            raise CorruptFile(f"{where}: {exc.message}") from None
        if size != info.size or digest.hexdigest() != info.sha256:
            raise CorruptFile(f"{where}: its bytes do not match the recorded size and sha256")

    def _object_path(self, file_id: str) -> str:
        if not _valid_id(file_id):  # defence in depth: ids are checked before we get here
            raise NotFound(f"no file with id {file_id!r}")
        return f"{self.root}/objects/{file_id[:2]}/{file_id}"

    def _write(self, target: str, blocks: Iterable[bytes]) -> None:
        """Stream ``blocks`` to a temporary object, then move it to ``target``."""
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}.part"
        try:
            self._makedirs(f"{self.root}/tmp")
            with self.fs.open(tmp, "wb") as out:
                for block in blocks:
                    out.write(block)
            self._makedirs(target.rsplit("/", 1)[0])
            if isinstance(self.fs, LocalFileSystem):
                os.replace(tmp, target)  # atomic, and replaces an existing object everywhere
            else:
                self.fs.mv(tmp, target)
        except BaseException:
            self._remove(tmp)
            raise

    def _makedirs(self, path: str) -> None:
        if path not in self._made:
            self.fs.makedirs(path, exist_ok=True)
            self._made.add(path)

    def _remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)


def _valid_id(file_id: object) -> bool:
    return isinstance(file_id, str) and FILE_ID.fullmatch(file_id) is not None


class _Meter:
    """Counts and hashes plaintext as it streams past, stopping at the size limit."""

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        self.name = name
        self.size = 0
        self.digest = hashlib.sha256()

    def count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.size += len(chunk)
            if self.size > self.limit:
                raise PayloadTooLarge(
                    f"file {self.name!r} is larger than the limit of "
                    f"{format_size(self.limit)} ({self.limit} bytes)"
                )
            self.digest.update(chunk)
            yield chunk


def _chunks(data: FileData) -> Iterator[bytes]:
    """``data`` as a stream of bytes chunks, whatever form it came in."""
    if isinstance(data, bytes | bytearray | memoryview):
        yield _as_bytes(data)
        return
    if isinstance(data, str):
        raise TypeError("file data must be bytes, a binary file object or bytes chunks, not str")
    read = getattr(data, "read", None)
    if read is not None:
        while block := read(READ_SIZE):
            yield _as_bytes(block)
        return
    for block in data:
        yield _as_bytes(block)


def _as_bytes(block: object) -> bytes:
    if isinstance(block, bytes):
        return block
    if isinstance(block, bytearray | memoryview):
        return bytes(block)
    raise TypeError(f"file data must be bytes chunks, got {type(block).__name__}")
