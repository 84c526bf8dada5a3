"""The file store: encrypted round trips, metadata, limits, names, keys and rotation."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import sqlalchemy as sa

from appbook.server.db import create_engine, read_transaction
from appbook.server.errors import NotFound, PayloadTooLarge, ValidationError
from appbook.server.files import (
    CorruptFile,
    FileInfo,
    FileStore,
    KeyFileError,
    KeyRing,
    format_size,
    parse_size,
)
from appbook.server.files.crypto import CHUNK_SIZE
from appbook.server.schema import ensure_schema

MARKER = b"PLAINTEXT-MARKER-7f3c"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'appbook.db'}")
    ensure_schema(engine)  # the Alembic migrations, as in production
    yield engine
    engine.dispose()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "home" / "keys.json"


@pytest.fixture
def keyring(key_file: Path) -> KeyRing:
    return KeyRing(key_file)


@pytest.fixture
def local(engine: sa.Engine, keyring: KeyRing, tmp_path: Path) -> FileStore:
    """A store in a local folder, the embedded default."""
    return FileStore(engine, str(tmp_path / "files"), keyring)


@pytest.fixture(params=["local", "memory"])
def store(
    request: pytest.FixtureRequest, engine: sa.Engine, keyring: KeyRing, tmp_path: Path
) -> Iterator[FileStore]:
    """The store on each backend: a local folder and fsspec's in-memory file system."""
    if request.param == "local":
        yield FileStore(engine, str(tmp_path / "files"), keyring)
        return
    url = f"memory://appbook-test-{uuid.uuid4().hex}"
    yield FileStore(engine, url, keyring)
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(root):
        fs.rm(root, recursive=True)


def stored_objects(store: FileStore) -> list[str]:
    """Every object under the store's root (objects and temporaries)."""
    return [p for p in store.fs.find(store.root) if not p.endswith("/")]


def file_rows(engine: sa.Engine) -> int:
    with read_transaction(engine) as conn:
        count: int = conn.execute(sa.text("SELECT count(*) FROM appbook_files")).scalar_one()
    return count


def test_round_trip_bytes(store: FileStore) -> None:
    info = store.put(b"hello " + MARKER, name="hello.txt", actor="ann")
    assert store.get(info.id) == b"hello " + MARKER
    assert len(info.id) == 32
    assert info.id in stored_objects(store)[0]


def test_round_trip_stream_larger_than_a_chunk(store: FileStore) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 17)
    info = store.put(io.BytesIO(data), name="big.bin", actor="ann")
    chunks = list(store.open(info.id))
    assert len(chunks) == 4
    assert b"".join(chunks) == data
    assert info.size == len(data)


def test_iterable_of_chunks_and_exact_chunk_multiple(store: FileStore) -> None:
    pieces = [os.urandom(1000) for _ in range(2 * CHUNK_SIZE // 1000)]
    data = b"".join(pieces) + os.urandom(2 * CHUNK_SIZE - len(b"".join(pieces)))
    info = store.put(iter([data[:5], data[5:]]), name="x.bin", actor="ann")
    assert store.get(info.id) == data
    empty = store.put(b"", name="empty.txt", actor="ann")
    assert store.get(empty.id) == b""
    assert empty.size == 0


def test_stat_fields(store: FileStore) -> None:
    data = b"a,b\n1,2\n"
    info = store.put(data, name="table.csv", folder="reports", actor="ann")
    got = store.stat(info.id)
    assert got == info
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.size == len(data)
    assert got.media_type == "text/csv"
    assert got.created_by == "ann"
    assert got.created_at.tzinfo is not None
    assert got.key_id == store.keyring.current_id
    assert got.to_dict() == {
        "id": info.id,
        "name": "table.csv",
        "folder": "reports",
        "size": len(data),
        "media_type": "text/csv",
        "sha256": hashlib.sha256(data).hexdigest(),
        "created_by": "ann",
        "created_at": info.created_at.isoformat(),
    }


def test_media_type_given_guessed_or_default(store: FileStore) -> None:
    given = store.put(b"x", name="data", media_type="Application/JSON", actor="ann")
    assert given.media_type == "application/json"
    assert store.put(b"x", name="photo.png", actor="ann").media_type == "image/png"
    assert store.put(b"x", name="blob", actor="ann").media_type == "application/octet-stream"
    with pytest.raises(ValidationError) as caught:
        store.put(b"x", name="x", media_type="nonsense", actor="ann")
    assert "type/subtype" in caught.value.errors["file"][0]


def test_list_by_folder(store: FileStore) -> None:
    a1 = store.put(b"1", name="1.txt", folder="a", actor="ann")
    a2 = store.put(b"2", name="2.txt", folder="/a/", actor="ann")
    store.put(b"3", name="3.txt", folder="a/b", actor="ann")
    top = store.put(b"4", name="4.txt", actor="ann")
    assert [f.id for f in store.list("a")] == [a1.id, a2.id]
    assert [f.id for f in store.list()] == [top.id]
    assert [f.name for f in store.list("a/b")] == ["3.txt"]
    assert store.list("nowhere") == []
    with pytest.raises(ValidationError):
        store.list("a/../b")


def test_delete_then_not_found(store: FileStore) -> None:
    info = store.put(b"bye", name="bye.txt", actor="ann")
    store.delete(info.id)
    with pytest.raises(NotFound):
        store.get(info.id)
    with pytest.raises(NotFound):
        store.stat(info.id)
    with pytest.raises(NotFound):
        store.delete(info.id)
    assert stored_objects(store) == []


@pytest.mark.parametrize("file_id", [uuid.uuid4().hex, "../../etc/passwd", "ABC", ""])
def test_unknown_id_is_not_found(local: FileStore, file_id: str) -> None:
    for call in (local.get, local.stat, local.open, local.delete):
        with pytest.raises(NotFound, match="no file with id"):
            call(file_id)


def test_exists(local: FileStore) -> None:
    a = local.put(b"a", name="a", actor="ann").id
    b = local.put(b"b", name="b", actor="ann").id
    unknown = uuid.uuid4().hex
    assert local.exists([a, b, unknown, "../x", a]) == {a, b}
    assert local.exists([]) == set()


def test_bytes_on_disk_are_not_the_plaintext(local: FileStore, tmp_path: Path) -> None:
    local.put(MARKER * 1000, name="secret.txt", actor="ann")
    local.put(io.BytesIO(MARKER * 50_000), name="secret2.txt", actor="ann")
    files = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert len(files) == 2
    for path in files:
        content = path.read_bytes()
        assert MARKER not in content
        assert MARKER[:8] not in content


def test_tampered_ciphertext_is_refused(local: FileStore, tmp_path: Path) -> None:
    info = local.put(os.urandom(2 * CHUNK_SIZE), name="t.bin", actor="ann")
    (path,) = (p for p in (tmp_path / "files").rglob("*") if p.is_file())
    original = path.read_bytes()
    tampered = bytearray(original)
    tampered[-40] ^= 0x01
    path.write_bytes(bytes(tampered))
    with pytest.raises(CorruptFile, match=f"file {info.id} .*integrity check"):
        local.get(info.id)
    path.write_bytes(original[: len(original) // 2])
    with pytest.raises(CorruptFile, match="truncated"):
        local.get(info.id)
    path.write_bytes(original + b"extra")
    with pytest.raises(CorruptFile, match="after their final chunk"):
        local.get(info.id)
    path.unlink()
    with pytest.raises(CorruptFile, match="missing"):
        local.get(info.id)


def test_object_moved_under_another_id_is_refused(local: FileStore, tmp_path: Path) -> None:
    a = local.put(b"alpha", name="a", actor="ann")
    b = local.put(b"bravo", name="b", actor="ann")
    objects = tmp_path / "files" / "objects"
    (objects / a.id[:2] / a.id).write_bytes((objects / b.id[:2] / b.id).read_bytes())
    with pytest.raises(CorruptFile, match=a.id):
        local.get(a.id)


def test_size_limit_stops_streaming(local: FileStore, engine: sa.Engine) -> None:
    produced = 0

    def endless() -> Iterator[bytes]:
        nonlocal produced
        for _ in itertools.count():
            produced += 600
            yield b"x" * 600

    with pytest.raises(PayloadTooLarge, match=r"limit of 1000 B \(1000 bytes\)"):
        local.put(endless(), name="huge.bin", actor="ann", max_size=1000)
    assert produced == 1200
    assert stored_objects(local) == []
    assert file_rows(engine) == 0


def test_size_limit_from_text_and_default(
    engine: sa.Engine, keyring: KeyRing, tmp_path: Path
) -> None:
    store = FileStore(engine, str(tmp_path / "files"), keyring, default_max_size=10)
    with pytest.raises(PayloadTooLarge, match="10 B"):
        store.put(b"x" * 11, name="a", actor="ann")
    assert store.put(b"x" * 2000, name="b", actor="ann", max_size="2KB").size == 2000
    with pytest.raises(PayloadTooLarge, match="2 KB"):
        store.put(b"x" * 2049, name="c", actor="ann", max_size="2KB")
    assert file_rows(engine) == 1
    assert len(stored_objects(store)) == 1


def test_accept_filter_with_wildcard(local: FileStore, engine: sa.Engine) -> None:
    accept = ["application/pdf", "image/*"]
    assert local.put(b"png", name="p.png", actor="ann", accept=accept).media_type == "image/png"
    assert local.put(b"%PDF", name="r.pdf", actor="ann", accept=accept).media_type == (
        "application/pdf"
    )

    def untouched() -> Iterator[bytes]:
        raise AssertionError("data read before the type was checked")
        yield b""

    with pytest.raises(ValidationError) as caught:
        local.put(untouched(), name="notes.txt", actor="ann", accept=accept, field="scan")
    assert caught.value.errors == {
        "scan": ["type text/plain is not accepted (accepts application/pdf, image/*)"]
    }
    assert local.put(b"a", name="A.CSV", actor="ann", accept=[".csv"]).name == "A.CSV"
    assert file_rows(engine) == 3


def test_name_is_never_a_path(local: FileStore, tmp_path: Path) -> None:
    info = local.put(MARKER, name="../../etc/passwd", actor="ann")
    assert info.name == "passwd"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("appbook.db")) == [
        "files",
        "home",
    ]
    (path,) = (p for p in (tmp_path / "files").rglob("*") if p.is_file())
    assert path == tmp_path / "files" / "objects" / info.id[:2] / info.id
    assert local.get(info.id) == MARKER


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("re\x00port\n.pdf", "report.pdf"),
        ("  spaced name.txt  ", "spaced name.txt"),
        ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),
    ],
)
def test_names_are_sanitised(local: FileStore, given: str, cleaned: str) -> None:
    assert local.put(b"x", name=given, actor="ann").name == cleaned


@pytest.mark.parametrize("name", ["", "../", "dir/..", "\x00\x01"])
def test_empty_names_are_refused(local: FileStore, name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        local.put(b"x", name=name, actor="ann")
    assert "empty" in caught.value.errors["name"][0]


def test_failed_insert_removes_the_bytes(local: FileStore, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE appbook_files")
    with pytest.raises(sa.exc.OperationalError):
        local.put(b"orphan?", name="o.txt", actor="ann")
    assert stored_objects(local) == []


def test_text_data_is_refused(local: FileStore) -> None:
    with pytest.raises(TypeError, match="not str"):
        local.put("text", name="t.txt", actor="ann")  # type: ignore[arg-type]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_key_file_created_with_mode_0600(keyring: KeyRing, key_file: Path) -> None:
    assert key_file.stat().st_mode & 0o777 == 0o600
    data = json.loads(key_file.read_text())
    assert data["current"] == keyring.current_id
    assert list(data["keys"]) == [keyring.current_id]
    assert list(key_file.parent.iterdir()) == [key_file]


def test_key_rotation(local: FileStore, keyring: KeyRing, key_file: Path) -> None:
    old = local.put(b"before rotation", name="old.txt", actor="ann")
    other_process = KeyRing(key_file)
    new_id = keyring.rotate()
    assert new_id != old.key_id
    assert other_process.current_id == new_id
    if sys.platform != "win32":
        assert key_file.stat().st_mode & 0o777 == 0o600
    new = local.put(b"after rotation", name="new.txt", actor="ann")
    assert new.key_id == new_id
    assert local.get(old.id) == b"before rotation"
    assert local.stat(old.id).key_id == old.key_id

    assert local.reencrypt() == 1
    assert local.stat(old.id).key_id == new_id
    assert local.get(old.id) == b"before rotation"
    assert local.reencrypt() == 0

    # the old key is no longer needed once everything is re-encrypted
    data = json.loads(key_file.read_text())
    del data["keys"][old.key_id]
    key_file.write_text(json.dumps(data))
    assert KeyRing(key_file).key_ids() == [new_id]
    assert local.get(old.id) == b"before rotation"
    assert local.get(new.id) == b"after rotation"


def test_missing_key_for_a_file_names_the_key_file(
    local: FileStore, engine: sa.Engine, tmp_path: Path
) -> None:
    info = local.put(b"x", name="x", actor="ann")
    elsewhere = KeyRing(tmp_path / "other-keys.json")
    store = FileStore(engine, local.files_url, elsewhere)
    with pytest.raises(KeyFileError, match=f"{info.key_id}.*other-keys.json"):
        store.get(info.id)


def test_missing_key_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "keys.json"
    with pytest.raises(KeyFileError, match=f"key file {path} does not exist"):
        KeyRing(path, create=False)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('{"current": "k", "keys": {"k": "!!"}}', "not base64"),
        ('{"current": "k", "keys": {"k": "AAAA"}}', "3 bytes, expected 32"),
        ('{"current": "x", "keys": {}}', "current key 'x'"),
        ("[]", "expected"),
    ],
)
def test_corrupt_key_file_error_names_the_file(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(KeyFileError) as caught:
        KeyRing(path)
    assert f"key file {path} is corrupt" in caught.value.message
    assert reason in caught.value.message


def test_sizes() -> None:
    assert parse_size("10MB") == 10 * 1024**2
    assert parse_size("512 KiB") == 512 * 1024
    assert parse_size("1GB") == 1024**3
    assert parse_size("100") == 100
    assert parse_size(42) == 42
    with pytest.raises(ValueError, match="10MB"):
        parse_size("ten")
    assert format_size(10 * 1024**2) == "10 MB"
    assert format_size(1536) == "1.5 KB"
    assert format_size(999) == "999 B"


def test_file_info_is_frozen(local: FileStore) -> None:
    info = local.put(b"x", name="x", actor="ann")
    assert isinstance(info, FileInfo)
    with pytest.raises(AttributeError):
        info.name = "y"  # type: ignore[misc]
