"""At-rest encryption of stored files: a key ring and a chunked AES-256-GCM stream format.

The key file is JSON, ``{"current": key_id, "keys": {key_id: base64 key}}``, created with
mode 0600 the first time it is needed. :meth:`KeyRing.rotate` adds a key and makes it current;
older keys stay so files written under them remain readable.

An encrypted object is a header followed by chunks::

    header  = b"ABKF" | version u8 (=1) | len(key_id) u8 | key_id | chunk_size u32 | salt[16]
    chunk   = final u8 (0 or 1) | len(ciphertext) u32 | ciphertext (plaintext + 16-byte tag)

Each object is sealed with its own key, HKDF-SHA256(master key, salt, info = label + context),
where the context is the file id, so an object copied under another id fails to decrypt.
Because the key is unique to the object, chunk ``i`` uses the counter nonce ``i`` (the
construction of Tink's streaming AEAD). The associated data of every chunk is the header,
the chunk index and the final flag, so chunks cannot be reordered, dropped, moved to another
object or truncated at a chunk boundary: decryption insists on a final chunk and nothing
after it. Both directions stream, one chunk in memory at a time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import struct
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import CorruptFile, KeyFileError

MAGIC = b"ABKF"
VERSION = 1
CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
KEY_BYTES = 32
SALT_BYTES = 16
TAG_BYTES = 16
HKDF_LABEL = b"appbook file v1|"
_CHUNK_HEAD = struct.Struct(">BI")


class KeyRing:
    """The at-rest keys of one key file; re-reads the file when another process changes it."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        """Load the key file at ``path``, creating it (mode 0600) if missing and ``create``."""
        self.path = Path(path)
        self._current = ""
        self._keys: dict[str, bytes] = {}
        self._signature: tuple[int, int, int] | None = None
        if create and not self.path.exists():
            _create_key_file(self.path)
        self._load()

    def __repr__(self) -> str:
        return f"<KeyRing {self.path} current={self._current}>"

    @property
    def current_id(self) -> str:
        """Id of the key new files are encrypted with."""
        self._refresh()
        return self._current

    def key_ids(self) -> list[str]:
        """Ids of every key in the ring."""
        self._refresh()
        return sorted(self._keys)

    def key(self, key_id: str) -> bytes:
        """The key called ``key_id``; :class:`KeyFileError` if the key file lacks it."""
        if key_id not in self._keys:
            self._refresh()
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyFileError(
                f"key {key_id!r} is not in key file {self.path}; restore the key file that "
                "holds it, files encrypted with it cannot be read without it"
            ) from None

    def rotate(self) -> str:
        """Add a new key, make it current for new writes, and return its id."""
        self._refresh()
        key_id = _new_key_id(self._keys)
        keys = {**self._keys, key_id: secrets.token_bytes(KEY_BYTES)}
        _write_key_file(self.path, key_id, keys)
        self._load()
        return key_id

    def encrypt(
        self,
        chunks: Iterable[bytes],
        *,
        context: bytes = b"",
        key_id: str | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> Iterator[bytes]:
        """Encrypt a plaintext stream under ``key_id`` (default: the current key).

        Yields the object's bytes: its header first, then one sealed chunk at a time.
        """
        key_id = key_id or self.current_id
        master = self.key(key_id)
        return encrypt_stream(chunks, key_id, master, context=context, chunk_size=chunk_size)

    def decrypt(self, stream: BinaryIO, *, context: bytes = b"") -> Iterator[bytes]:
        """Decrypt an object written by :meth:`encrypt` with the same context, chunk by chunk.

        Raises :class:`CorruptFile` on any tampering (possibly after earlier chunks were
        yielded) and :class:`KeyFileError` when the object's key is not in the ring.
        """
        header, key_id, chunk_size = read_header(stream)
        return decrypt_chunks(stream, header, self.key(key_id), chunk_size, context=context)

    def _refresh(self) -> None:
        try:
            signature = _signature(self.path)
        except OSError:
            return  # keep the keys we have rather than lose access to stored files
        if signature != self._signature:
            self._load()

    def _load(self) -> None:
        try:
            signature = _signature(self.path)
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyFileError(
                f"key file {self.path} does not exist; restore it from a backup (stored files "
                "cannot be decrypted without it) or point key_file / APPBOOK_KEY_FILE at it"
            ) from None
        except OSError as exc:
            raise KeyFileError(f"key file {self.path} cannot be read: {exc.strerror}") from None
        self._current, self._keys = _parse_key_file(self.path, text)
        self._signature = signature


def _signature(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _parse_key_file(path: Path, text: str) -> tuple[str, dict[str, bytes]]:
    def corrupt(reason: str) -> KeyFileError:
        return KeyFileError(
            f"key file {path} is corrupt: {reason}; restore it from a backup, stored files "
            "cannot be decrypted without it"
        )

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise corrupt(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise corrupt('expected {"current": key_id, "keys": {key_id: base64 key}}')
    keys: dict[str, bytes] = {}
    for key_id, encoded in data["keys"].items():
        if not _valid_key_id(key_id) or not isinstance(encoded, str):
            raise corrupt(f"bad entry for key {key_id!r}")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise corrupt(f"key {key_id!r} is not base64") from None
        if len(raw) != KEY_BYTES:
            raise corrupt(f"key {key_id!r} is {len(raw)} bytes, expected {KEY_BYTES}")
        keys[key_id] = raw
    current = data.get("current")
    if not isinstance(current, str) or current not in keys:
        raise corrupt(f"current key {current!r} is not among its keys")
    return current, keys


def _valid_key_id(key_id: object) -> bool:
    return isinstance(key_id, str) and 0 < len(key_id) <= 64 and key_id.isascii()


def _new_key_id(existing: Iterable[str]) -> str:
    taken = set(existing)
    while True:
        key_id = f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
        if key_id not in taken:
            return key_id


def _create_key_file(path: Path) -> None:
    key_id = _new_key_id(())
    with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
        _write_key_file(path, key_id, {key_id: secrets.token_bytes(KEY_BYTES)}, replace=False)


def _write_key_file(
    path: Path, current: str, keys: dict[str, bytes], *, replace: bool = True
) -> None:
    """Write the whole file to a 0600 temporary, then move it into place atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"current": current, "keys": {k: base64.b64encode(v).decode() for k, v in keys.items()}}
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if it exists, so a racing creator never loses keys
    finally:
        tmp.unlink(missing_ok=True)


def _file_key(master: bytes, salt: bytes, context: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=HKDF_LABEL + context)
    return AESGCM(hkdf.derive(master))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _associated(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, final)


def encrypt_stream(
    chunks: Iterable[bytes],
    key_id: str,
    master: bytes,
    *,
    context: bytes = b"",
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """Encrypt ``chunks`` (any sizes) with ``master``; yields the header, then each chunk."""
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}")
    encoded_id = key_id.encode("ascii")
    salt = secrets.token_bytes(SALT_BYTES)
    header = MAGIC + struct.pack(">BB", VERSION, len(encoded_id)) + encoded_id
    header += struct.pack(">I", chunk_size) + salt
    aead = _file_key(master, salt, context)
    yield header
    index, pending = 0, None
    for piece in rechunk(chunks, chunk_size):
        if pending is not None:
            yield _seal(aead, header, index, pending, final=False)
            index += 1
        pending = piece
    yield _seal(aead, header, index, pending or b"", final=True)


def _seal(aead: AESGCM, header: bytes, index: int, plain: bytes, *, final: bool) -> bytes:
    sealed = aead.encrypt(_nonce(index), plain, _associated(header, index, final))
    return _CHUNK_HEAD.pack(final, len(sealed)) + sealed


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Full ``size`` pieces of the concatenated ``chunks``, then the remainder if not empty."""
    buffer = bytearray()
    for data in chunks:
        view = memoryview(data)
        while view:
            take = size - len(buffer)
            buffer += view[:take]
            view = view[take:]
            if len(buffer) == size:
                yield bytes(buffer)
                buffer.clear()
    if buffer:
        yield bytes(buffer)


def read_header(stream: BinaryIO) -> tuple[bytes, str, int]:
    """Read an object's header: ``(header bytes, key id, chunk size)``."""
    fixed = _read_exact(stream, len(MAGIC) + 2)
    if len(fixed) < len(MAGIC) + 2 or fixed[: len(MAGIC)] != MAGIC:
        raise CorruptFile("stored bytes are not an Appbook encrypted file (bad header)")
    version, id_length = fixed[len(MAGIC)], fixed[len(MAGIC) + 1]
    if version != VERSION:
        raise CorruptFile(f"stored bytes use format version {version}, expected {VERSION}")
    rest = _read_exact(stream, id_length + 4 + SALT_BYTES)
    if len(rest) < id_length + 4 + SALT_BYTES:
        raise CorruptFile("stored bytes are truncated (incomplete header)")
    try:
        key_id = rest[:id_length].decode("ascii")
    except UnicodeDecodeError:
        raise CorruptFile("stored bytes have a malformed key id in their header") from None
    (chunk_size,) = struct.unpack(">I", rest[id_length : id_length + 4])
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise CorruptFile(f"stored bytes declare an impossible chunk size {chunk_size}")
    return fixed + rest, key_id, chunk_size


def decrypt_chunks(
    stream: BinaryIO, header: bytes, master: bytes, chunk_size: int, *, context: bytes = b""
) -> Iterator[bytes]:
    """Decrypt the chunks that follow ``header`` in ``stream``, checking every one."""
    aead = _file_key(master, header[-SALT_BYTES:], context)
    index = 0
    while True:
        head = _read_exact(stream, _CHUNK_HEAD.size)
        if len(head) < _CHUNK_HEAD.size:
            raise CorruptFile(f"stored bytes are truncated (chunk {index} missing, no final chunk)")
        flag, length = _CHUNK_HEAD.unpack(head)
        if flag not in (0, 1) or not TAG_BYTES <= length <= chunk_size + TAG_BYTES:
            raise CorruptFile(f"stored bytes have a malformed chunk {index}")
        sealed = _read_exact(stream, length)
        if len(sealed) < length:
            raise CorruptFile(f"stored bytes are truncated (chunk {index} is incomplete)")
        try:
            plain = aead.decrypt(_nonce(index), sealed, _associated(header, index, bool(flag)))
        except InvalidTag:
            raise CorruptFile(
                f"stored bytes failed their integrity check at chunk {index}: they were "
                "altered, or belong to another file"
            ) from None
        yield plain
        if flag:
            break
        index += 1
    if stream.read(1):
        raise CorruptFile("stored bytes have data after their final chunk")


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end of the stream."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        data = stream.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)
