"""REST: components, publications and records through a real jupyter_server."""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import HTTPResponse

Api = Any


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


async def test_health(api: Api) -> None:
    response = await api("GET", "health")
    assert response.code == 200 and body(response) == {"status": "ok", "checks": {}}
    response = await api("GET", "health/ready")
    assert response.code == 200 and body(response)["checks"] == {"database": "ok"}
    assert response.headers["X-Request-Id"]


async def test_publish_list_and_describe(published_api: Api) -> None:
    listing = body(await published_api("GET", "components"))
    assert [c["name"] for c in listing["items"]] == ["items", "suppliers"]
    detail = body(await published_api("GET", "components/items"))
    assert detail["record_schema"]["properties"]["status"]["anyOf"][0]["enum"] == [0, 1, 2]
    assert [f["name"] for f in detail["definition"]["fields"]][:3] == ["code", "notes", "qty"]
    pubs = body(await published_api("GET", "publications"))
    assert [p["number"] for p in pubs["items"]] == [1]


async def test_publish_errors_name_file_and_line(api: Api) -> None:
    response = await api(
        "POST",
        "publications",
        json_body={
            "files": {"x.component.yaml": "name: x\nfields:\n  a: {type: number, min: zero}\n"}
        },
    )
    assert response.code == 422
    error = body(response)["error"]
    assert error["code"] == "invalid_definition"
    assert error["problems"] == [
        {
            "file": "x.component.yaml",
            "line": 3,
            "path": "fields.a.min",
            "message": 'expected a number, got "zero"',
        }
    ]


async def test_publish_json_definitions_and_rollback(api: Api) -> None:
    v1 = {"name": "notes", "fields": {"text": {"type": "text"}}}
    assert (await api("POST", "publications", json_body={"definitions": [v1]})).code == 201
    again = await api("POST", "publications", json_body={"definitions": [v1]})
    assert again.code == 200 and body(again)["changed"] is False
    v2 = {"name": "notes", "fields": {"text": {"type": "text"}, "tag": {"type": "string"}}}
    assert (await api("POST", "publications", json_body={"definitions": [v2]})).code == 201
    back = await api("POST", "publications/1/rollback", body=b"")
    assert back.code == 201 and body(back)["kind"] == "rollback"
    missing = await api("POST", "publications/9/rollback", body=b"")
    assert missing.code == 404 and body(missing)["error"]["code"] == "not_found"


async def test_destructive_publication_is_409(api: Api) -> None:
    v1 = {"name": "notes", "fields": {"text": {"type": "text"}, "tag": {"type": "string"}}}
    await api("POST", "publications", json_body={"definitions": [v1]})
    await api("POST", "components/notes/records", json_body={"tag": "x"})
    v2 = {"name": "notes", "fields": {"text": {"type": "text"}}}
    response = await api("POST", "publications", json_body={"definitions": [v2]})
    assert response.code == 409 and body(response)["error"]["code"] == "destructive_change"
    allowed = await api(
        "POST", "publications", json_body={"definitions": [v2], "allow_destructive": True}
    )
    assert allowed.code == 201


async def test_record_lifecycle_with_etags(published_api: Api) -> None:
    api = published_api
    created = await api(
        "POST",
        "components/items/records",
        json_body={"code": "A1", "qty": 2, "due": "2026-01-01T00:00:00Z"},
    )
    assert created.code == 201, created.body
    rec = body(created)
    assert created.headers["ETag"] == '"1"' and created.headers["Location"].endswith(
        f"/records/{rec['id']}"
    )
    assert rec["due"] == "2026-01-01T00:00:00+00:00" and rec["created_by"]
    got = await api("GET", f"components/items/records/{rec['id']}")
    assert body(got) == rec and got.headers["ETag"] == '"1"'
    patched = await api(
        "PATCH",
        f"components/items/records/{rec['id']}",
        json_body={"qty": 3},
        headers={"If-Match": '"1"'},
    )
    assert (
        patched.code == 200 and body(patched)["version"] == 2 and patched.headers["ETag"] == '"2"'
    )
    stale = await api(
        "PATCH", f"components/items/records/{rec['id']}", json_body={"qty": 4, "version": 1}
    )
    assert stale.code == 409 and body(stale)["error"]["fields"] == {
        "version": [body(stale)["error"]["message"]]
    }
    stale_delete = await api(
        "DELETE", f"components/items/records/{rec['id']}", headers={"If-Match": '"1"'}
    )
    assert stale_delete.code == 409
    deleted = await api(
        "DELETE", f"components/items/records/{rec['id']}", headers={"If-Match": '"2"'}
    )
    assert deleted.code == 204
    gone = await api("GET", f"components/items/records/{rec['id']}")
    assert gone.code == 404 and body(gone)["error"]["code"] == "not_found"


async def test_query_parameters(published_api: Api) -> None:
    api = published_api
    for i in range(5):
        await api("POST", "components/items/records", json_body={"code": f"Q{i}", "qty": i})
    where = json.dumps({"qty": {"ge": 1}})
    page = body(
        await api(
            "GET",
            "components/items/records",
            params={
                "where": where,
                "order_by": "-qty",
                "limit": "2",
                "total": "true",
                "fields": "code,qty",
            },
        )
    )
    assert [r["code"] for r in page["items"]] == ["Q4", "Q3"] and page["total"] == 4
    assert set(page["items"][0]) == {"id", "code", "qty"}
    rest = body(
        await api(
            "GET",
            "components/items/records",
            params={
                "where": where,
                "order_by": "-qty",
                "limit": "2",
                "cursor": page["next_cursor"],
            },
        )
    )
    assert [r["code"] for r in rest["items"]] == ["Q2", "Q1"] and "total" not in rest


async def test_bad_requests(published_api: Api) -> None:
    api = published_api
    cases = [
        (
            await api("GET", "components/items/records", params={"where": "{nope"}),
            400,
            "bad_request",
        ),
        (
            await api("GET", "components/items/records", params={"limit": "many"}),
            400,
            "bad_request",
        ),
        (
            await api("GET", "components/items/records", params={"where": '{"qty": {"like": 1}}'}),
            400,
            "bad_query",
        ),
        (await api("POST", "components/items/records", body="not json"), 400, "bad_request"),
        (await api("POST", "components/items/records", json_body=[1, 2]), 400, "bad_request"),
        (
            await api("POST", "components/items/records", json_body={"code": "x", "bogus": 1}),
            422,
            "validation_failed",
        ),
        (await api("GET", "components/nope/records"), 404, "not_found"),
        (
            await api("POST", "publications", json_body={"files": {}, "extra": 1}),
            422,
            "validation_failed",
        ),
        (
            await api(
                "PATCH", "components/items/records/1", json_body={}, headers={"If-Match": "abc"}
            ),
            400,
            "bad_request",
        ),
    ]
    for response, status, code in cases:
        assert (response.code, body(response)["error"]["code"]) == (status, code), response.body
    invalid = body(cases[5][0])["error"]["fields"]
    assert invalid["code"] == ["must be at least 2 characters"] and invalid["bogus"][0].startswith(
        "unknown field"
    )
    assert body(cases[7][0])["error"]["fields"] == {"extra": ["unknown field"]}


async def test_unique_conflict_is_409(published_api: Api) -> None:
    await published_api("POST", "components/items/records", json_body={"code": "U1"})
    response = await published_api("POST", "components/items/records", json_body={"code": "U1"})
    assert response.code == 409 and body(response)["error"]["fields"]["code"]


async def test_import_and_export(published_api: Api) -> None:
    api = published_api
    csv_body = "code,qty\nI1,1\nI2,2\n"
    response = await api(
        "POST",
        "components/items/records:import",
        body=csv_body,
        headers={"Content-Type": "text/csv"},
    )
    assert response.code == 201 and body(response)["created"] == 2
    bad = await api(
        "POST",
        "components/items/records:import",
        body="code,qty\nI3,-1\n",
        headers={"Content-Type": "text/csv"},
    )
    assert bad.code == 422 and body(bad)["error"]["fields"] == {"row 1.qty": ["must be at least 0"]}
    export = await api("GET", "components/items/records:export", params={"format": "jsonl"})
    lines = [json.loads(line) for line in export.body.decode().splitlines()]
    assert [r["code"] for r in lines] == ["I1", "I2"] and export.headers[
        "Content-Type"
    ] == "application/x-ndjson"
    csv_export = await api("GET", "components/items/records:export", params={"where": '{"qty": 2}'})
    assert csv_export.body.decode().splitlines()[1].split(",")[6] == "I2"
    assert "attachment" in csv_export.headers["Content-Disposition"]


async def test_body_over_the_limit_is_413(published_api: Api, jp_serverapp: Any) -> None:
    jp_serverapp.web_app.settings["appbook_max_body_size"] = 100
    response = await published_api(
        "POST", "components/items/records", json_body={"code": "X" * 200}
    )
    assert response.code == 413 and body(response)["error"]["code"] == "too_large"


async def test_token_writes_are_the_server_owner(published_api: Api, jp_serverapp: Any) -> None:
    owner = jp_serverapp.web_app.settings["appbook_engine"].actor
    rec = body(
        await published_api("POST", "components/suppliers/records", json_body={"name": "Owner"})
    )
    again = body(
        await published_api(
            "PATCH", f"components/suppliers/records/{rec['id']}", json_body={"email": "o@x.example"}
        )
    )
    assert rec["created_by"] == owner and again["updated_by"] == owner


async def test_errors_keep_the_request_id(published_api: Api) -> None:
    response = await published_api(
        "GET", "components/items/records/999", headers={"X-Request-Id": "trace-me"}
    )
    assert response.code == 404 and response.headers["X-Request-Id"] == "trace-me"
