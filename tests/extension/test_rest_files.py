"""REST: file upload (raw and multipart, streamed), download, metadata, list, delete."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from appbook.extension.base import BadRequest
from appbook.extension.handlers.files import MultipartReader, content_disposition

FIXTURES = Path(__file__).parent.parent / "fixtures"
Api = Callable[..., Awaitable[HTTPResponse]]
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 1200 + b"\r\n--not-a-boundary\r\n%%EOF"
BOUNDARY = "----appbook-test-7MA4YWxkTrZu0gW"
DOCS = {
    "name": "docs",
    "fields": {
        "title": {"type": "string"},
        "scan": {"type": "file", "accept": ["application/pdf"], "max_size": 1024},
    },
}


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


def multipart(
    content: bytes,
    filename: str,
    media_type: str = "application/pdf",
    *,
    extra_file: bool = False,
) -> tuple[bytes, dict[str, str]]:
    """A form with a text field, then the file part (and a second file part if asked)."""
    b = BOUNDARY.encode()
    parts = [
        b"preamble to ignore\r\n--" + b + b"\r\n",
        b'Content-Disposition: form-data; name="note"\r\n\r\nhello\r\n--' + b + b"\r\n",
        b'Content-Disposition: form-data; name="file"; filename="'
        + filename.encode()
        + b'"\r\nContent-Type: '
        + media_type.encode()
        + b"\r\n\r\n"
        + content
        + b"\r\n--"
        + b,
    ]
    if extra_file:
        parts.append(
            b'\r\nContent-Disposition: form-data; name="f2"; filename="b"\r\n\r\nx\r\n--' + b
        )
    parts.append(b"--\r\nepilogue")
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return b"".join(parts), headers


async def publish_docs(api: Api) -> None:
    """The fixture components plus ``docs`` (a file field of 1 KB at most)."""
    files = {p.name: p.read_text() for p in (FIXTURES / "all_types").glob("*.yaml")}
    response = await api("POST", "publications", json_body={"files": files, "definitions": [DOCS]})
    assert response.code == 201, response.body


async def upload(api: Api, data: bytes, media_type: str, **params: str) -> HTTPResponse:
    return await api(
        "POST", "files", body=data, params=params, headers={"Content-Type": media_type}
    )


async def test_raw_upload_download_meta_list_delete(api: Api) -> None:
    created = await upload(api, PDF, "application/pdf", name='ré"sumé\r\n.pdf', folder="docs/2026")
    assert created.code == 201, created.body
    info = body(created)
    assert info["name"] == 'ré"sumé.pdf' and info["folder"] == "docs/2026"
    assert info["size"] == len(PDF) and info["media_type"] == "application/pdf"
    assert created.headers["Location"].endswith(f"/appbook/api/files/{info['id']}")

    got = await api("GET", f"files/{info['id']}")
    assert got.code == 200 and got.body == PDF
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Length"] == str(len(PDF))
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]
    assert got.headers["Content-Disposition"] == (
        "attachment; filename=\"re_sume.pdf\"; filename*=UTF-8''r%C3%A9%22sum%C3%A9.pdf"
    )
    meta = await api("GET", f"files/{info['id']}/meta")
    assert meta.code == 200 and body(meta) == info
    listed = await api("GET", "files", params={"folder": "docs/2026"})
    assert body(listed) == {"items": [info]}
    assert body(await api("GET", "files"))["items"] == []

    assert (await api("DELETE", f"files/{info['id']}")).code == 204
    for method, path in [
        ("GET", f"files/{info['id']}"),
        ("GET", f"files/{info['id']}/meta"),
        ("DELETE", f"files/{info['id']}"),
        ("GET", "files/not-an-id"),
    ]:
        gone = await api(method, path)
        assert gone.code == 404 and body(gone)["error"]["code"] == "not_found", (method, path)


async def test_multipart_upload(api: Api) -> None:
    data, headers = multipart(PDF, "scan 1.pdf")
    created = await api("POST", "files", body=data, headers=headers, params={"folder": "in"})
    assert created.code == 201, created.body
    info = body(created)
    assert (info["name"], info["folder"], info["size"]) == ("scan 1.pdf", "in", len(PDF))
    assert (await api("GET", f"files/{info['id']}")).body == PDF
    renamed = await api("POST", "files", body=data, headers=headers, params={"name": "other.pdf"})
    assert body(renamed)["name"] == "other.pdf"


async def test_large_upload_streams_through(api: Api) -> None:
    # Many more chunks than the pipe holds: the body is read as the store keeps up.
    data = os.urandom(5 * 1024 * 1024 + 17)
    created = await upload(api, data, "application/octet-stream", name="blob.bin")
    assert created.code == 201 and body(created)["size"] == len(data)
    assert (await api("GET", f"files/{body(created)['id']}")).body == data


async def test_empty_file_and_guessed_type(api: Api) -> None:
    # No Content-Type of its own (tornado sends the form default): the name decides.
    created = await api("POST", "files", body=b"", params={"name": "notes.txt"})
    info = body(created)
    assert created.code == 201 and info["media_type"] == "text/plain" and info["size"] == 0
    got = await api("GET", f"files/{info['id']}")
    assert got.code == 200 and got.body == b"" and got.headers["Content-Type"] == "text/plain"


async def test_malformed_uploads_are_400(api: Api) -> None:
    no_name = await upload(api, b"abc", "application/pdf")
    no_file_part = await api(
        "POST",
        "files",
        body=f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--{BOUNDARY}--",
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    no_boundary = await upload(api, b"abc", "multipart/form-data")
    truncated, headers = multipart(PDF, "a.pdf")
    cut = await api("POST", "files", body=truncated[:5000], headers=headers)
    two_files, headers = multipart(PDF, "a.pdf", extra_file=True)
    both = await api("POST", "files", body=two_files, headers=headers)
    half = await upload(api, b"abc", "text/plain", name="a.txt", component="docs")
    for response in (no_name, no_file_part, no_boundary, cut, both, half):
        assert response.code == 400, response.body
        assert body(response)["error"]["code"] == "bad_request"
    assert "two" in body(both)["error"]["message"]
    assert body(await api("GET", "files", params={"folder": ""}))["items"] == []


async def test_field_accept_and_max_size(published_api: Api) -> None:
    api = published_api
    await publish_docs(api)
    scan = {"component": "items", "field": "scan"}

    ok = await upload(api, PDF, "application/pdf", name="a.pdf", **scan)
    image = await upload(api, b"\x89PNG", "image/png", name="a.png", **scan)
    assert ok.code == 201 and image.code == 201
    text = await upload(api, b"hello", "text/plain", name="a.txt", **scan)
    assert text.code == 422 and body(text)["error"]["fields"] == {
        "scan": ["type text/plain is not accepted (accepts application/pdf, image/*)"]
    }
    data, headers = multipart(b"hello", "a.txt", "text/plain")
    multi = await api("POST", "files", body=data, headers=headers, params=scan)
    assert multi.code == 422 and list(body(multi)["error"]["fields"]) == ["scan"]
    not_file = await upload(
        api, PDF, "application/pdf", name="a.pdf", component="items", field="qty"
    )
    assert not_file.code == 422 and "scan" in body(not_file)["error"]["fields"]["field"][0]
    unknown = await upload(api, PDF, "application/pdf", name="a.pdf", component="nope", field="x")
    assert unknown.code == 404

    small = {"component": "docs", "field": "scan"}
    fits = await upload(api, b"%PDF" + b"x" * 1020, "application/pdf", name="a.pdf", **small)
    assert fits.code == 201, fits.body
    # Content-Length over the limit: refused before the body is read.
    over = await upload(api, b"%PDF" + b"x" * 1021, "application/pdf", name="a.pdf", **small)
    # Multipart: the limit applies to the file part, found while streaming.
    data, headers = multipart(b"%PDF" + b"x" * 2000, "big.pdf")
    multi_over = await api("POST", "files", body=data, headers=headers, params=small)
    for response in (over, multi_over):
        assert response.code == 413, response.body
        error = body(response)["error"]
        assert error["code"] == "too_large" and "1 KB" in error["message"]
    names = sorted(f["name"] for f in body(await api("GET", "files"))["items"])
    assert names == ["a.pdf", "a.pdf", "a.png"]  # nothing kept from refused uploads


async def test_chunked_upload_over_the_limit_is_413(published_api: Api, jp_fetch: Any) -> None:
    await publish_docs(published_api)

    def sender(pieces: int) -> Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]]:
        async def produce(write: Callable[[bytes], Awaitable[None]]) -> None:
            await write(b"%PDF")
            for _ in range(pieces):
                await write(b"x" * 300)

        return produce

    async def send(pieces: int) -> HTTPResponse:
        response: HTTPResponse = await jp_fetch(
            "appbook",
            "api",
            "files",
            method="POST",
            params={"name": "c.pdf", "component": "docs", "field": "scan"},
            headers={"Content-Type": "application/pdf"},
            body_producer=sender(pieces),
            raise_error=False,
        )
        return response

    fits = await send(3)  # no Content-Length: counted as the chunks arrive
    assert fits.code == 201 and body(fits)["size"] == 904
    over = await send(5)
    assert over.code == 413 and body(over)["error"]["code"] == "too_large"


async def test_client_leaving_mid_upload_leaves_nothing(
    api: Api, jp_serverapp: Any, jp_http_port: int, jp_base_url: str, jp_auth_header: Any
) -> None:
    store = jp_serverapp.web_app.settings["appbook_engine"].file_store
    _, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    head = (
        f"POST {jp_base_url}appbook/api/files?name=cut.bin HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{jp_http_port}\r\nAuthorization: {jp_auth_header['Authorization']}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 3000000\r\n\r\n"
    )
    writer.write(head.encode() + b"x" * 500_000)
    await writer.drain()
    tmp = Path(store.root) / "tmp"
    deadline = time.monotonic() + 30
    while not any(tmp.glob("*.part")):  # the store is writing the upload
        assert time.monotonic() < deadline, "the upload never reached the store"
        await asyncio.sleep(0.01)  # yields to the server; the deadline bounds the wait
    writer.close()
    while any(tmp.glob("*.part")):  # the upload is abandoned and its bytes removed
        assert time.monotonic() < deadline, "the abandoned upload left its bytes behind"
        await asyncio.sleep(0.01)
    assert body(await api("GET", "files"))["items"] == []


async def test_missing_stored_bytes_are_a_500_before_any_byte(api: Api, jp_serverapp: Any) -> None:
    info = body(await upload(api, PDF, "application/pdf", name="a.pdf"))
    store = jp_serverapp.web_app.settings["appbook_engine"].file_store
    os.remove(Path(store.root) / "objects" / info["id"][:2] / info["id"])
    got = await api("GET", f"files/{info['id']}")
    assert got.code == 500 and body(got)["error"]["code"] == "corrupt_file"


class DenyAppbookWrites(Authorizer):
    """Lets everyone read, nobody write Appbook resources."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "appbook" and action == "write")


class TestWithoutWritePermission:
    @pytest.fixture
    def jp_server_config(self, jp_server_config: Config) -> Config:
        jp_server_config["ServerApp"]["authorizer_class"] = DenyAppbookWrites
        return jp_server_config

    async def test_upload_and_delete_are_403(self, api: Api) -> None:
        refused = await upload(api, PDF, "application/pdf", name="a.pdf")
        assert refused.code == 403 and body(refused)["error"]["code"] == "forbidden"
        assert (await api("DELETE", f"files/{'0' * 32}")).code == 403
        assert (await api("GET", "files")).code == 200


async def test_unauthenticated_upload_is_403(api: Api) -> None:
    response = await api(
        "POST",
        "files",
        body=PDF,
        params={"name": "a.pdf"},
        headers={"Authorization": "token wrong", "Content-Type": "application/pdf"},
    )
    assert response.code == 403


def test_multipart_reader_any_chunking() -> None:
    data, _ = multipart(PDF[:3000], 'a "quoted" name.pdf')
    for size in (1, 2, 7, 64, 4096, len(data)):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        reader = MultipartReader(chunks, BOUNDARY.encode())
        headers = reader.file_part()
        assert headers.get_filename() == 'a "quoted" name.pdf'
        assert headers["Content-Type"] == "application/pdf"
        assert b"".join(reader.content()) == PDF[:3000], size


def test_multipart_reader_part_without_headers() -> None:
    data = (
        b"--B\r\n\r\nplain\r\n--B\r\nContent-Disposition: form-data; filename=f\r\n\r\nF\r\n--B--"
    )
    reader = MultipartReader([data], b"B")
    assert reader.file_part().get_filename() == "f"
    assert b"".join(reader.content()) == b"F"
    with pytest.raises(BadRequest):
        MultipartReader([b"--B\r\nX: y\r\n\r\nno end"], b"B").file_part()


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("plain.pdf", "attachment; filename=\"plain.pdf\"; filename*=UTF-8''plain.pdf"),
        ('a"b\\c.txt', "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%5Cc.txt"),
        ("x\r\ny.txt", "attachment; filename=\"xy.txt\"; filename*=UTF-8''xy.txt"),
        (
            "日本.txt",
            "attachment; filename=\"download.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt",
        ),
        ("日本", "attachment; filename=\"download\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC"),
    ],
)
def test_content_disposition(name: str, header: str) -> None:
    assert content_disposition(name) == header
