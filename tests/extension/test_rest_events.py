"""REST: record events by long poll and by WebSocket, including writes from a kernel."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPClientError, HTTPResponse
from tornado.websocket import WebSocketClientConnection
from traitlets.config import Config

Api = Callable[..., Awaitable[HTTPResponse]]
WsFetch = Callable[..., Awaitable[WebSocketClientConnection]]
DEADLINE = 60.0


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


async def create(api: Api, component: str, values: dict[str, Any]) -> dict[str, Any]:
    response = await api("POST", f"components/{component}/records", json_body=values)
    assert response.code == 201, response.body
    record: dict[str, Any] = body(response)
    return record


async def now(api: Api) -> int:
    """The current last seq, from a poll that does not wait."""
    seq: int = body(await api("GET", "events", params={"timeout": "0"}))["last_seq"]
    return seq


async def receive(ws: WebSocketClientConnection) -> dict[str, Any]:
    """The next message, as JSON (within the deadline)."""
    message = await asyncio.wait_for(ws.read_message(), DEADLINE)
    assert isinstance(message, str), message
    data: dict[str, Any] = json.loads(message)
    return data


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` while the server runs, failing after the deadline."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)  # yields to the server; the deadline bounds the wait


def subscribers(jp_serverapp: Any) -> int:
    """Open subscriptions of the server's bus (to start writing once a poll waits)."""
    return len(jp_serverapp.web_app.settings["appbook_engine"].bus._fanout._snapshot())


async def test_poll_answers_at_once_with_events_after_since(published_api: Api) -> None:
    api = published_api
    start = await now(api)
    supplier = await create(api, "suppliers", {"name": "Acme"})
    item = await create(api, "items", {"code": "A1", "supplier": supplier["id"]})
    await api("PATCH", f"components/items/records/{item['id']}", json_body={"qty": 3})

    page = body(await api("GET", "events", params={"since": str(start)}))
    ops = [(e["component"], e["op"], e["record_id"]) for e in page["items"]]
    assert ops == [
        ("suppliers", "create", supplier["id"]),
        ("items", "create", item["id"]),
        ("items", "update", item["id"]),
    ]
    assert page["last_seq"] == page["items"][-1]["seq"] == start + 3
    assert page["items"][2]["changed"] == ["qty"] and page["items"][2]["version"] == 2

    only_items = body(
        await api("GET", "events", params={"since": str(start), "component": "items"})
    )
    assert [e["op"] for e in only_items["items"]] == ["create", "update"]
    first = body(await api("GET", "events", params={"since": str(start), "limit": "1"}))
    assert [e["component"] for e in first["items"]] == ["suppliers"]
    assert first["last_seq"] == start + 1


async def test_poll_waits_for_the_next_event(published_api: Api, jp_serverapp: Any) -> None:
    api = published_api
    start = await now(api)
    before = subscribers(jp_serverapp)  # the server may hold its own (metrics)
    poll = asyncio.ensure_future(
        api("GET", "events", params={"since": str(start), "timeout": "30"})
    )
    await until(lambda: subscribers(jp_serverapp) > before or poll.done())
    record = await create(api, "suppliers", {"name": "Late"})
    page = body(await asyncio.wait_for(poll, DEADLINE))
    assert [(e["op"], e["record_id"]) for e in page["items"]] == [("create", record["id"])]
    assert subscribers(jp_serverapp) == before  # the poll's subscription is closed


async def test_poll_times_out_empty(published_api: Api) -> None:
    api = published_api
    start = await now(api)
    started = time.monotonic()
    page = body(await api("GET", "events", params={"since": str(start), "timeout": "0.3"}))
    assert page == {"items": [], "last_seq": start}
    assert time.monotonic() - started >= 0.3
    # Events of other components only: the cursor may move past them.
    await create(api, "suppliers", {"name": "Other"})
    page = body(
        await api(
            "GET", "events", params={"since": str(start), "component": "items", "timeout": "0.2"}
        )
    )
    assert page == {"items": [], "last_seq": start + 1}


async def test_poll_without_since_starts_now(published_api: Api) -> None:
    api = published_api
    await create(api, "suppliers", {"name": "Before"})
    page = body(await api("GET", "events", params={"timeout": "0.1"}))
    assert page["items"] == [] and page["last_seq"] >= 1


async def test_poll_bad_parameters_are_400(api: Api) -> None:
    for params in (
        {"since": "x"},
        {"since": "-1"},
        {"timeout": "61"},
        {"timeout": "soon"},
        {"limit": "0"},
        {"limit": "1001"},
    ):
        response = await api("GET", "events", params=params)
        assert response.code == 400, params
        assert body(response)["error"]["code"] == "bad_request"


async def test_websocket_replays_since_and_filters(
    published_api: Api, jp_ws_fetch: WsFetch, jp_serverapp: Any
) -> None:
    api = published_api
    start = await now(api)
    before = subscribers(jp_serverapp)
    await create(api, "items", {"code": "W1"})
    supplier = await create(api, "suppliers", {"name": "Replayed"})
    ws = await jp_ws_fetch(
        "appbook", "api", "events", "ws", params={"since": str(start), "component": "suppliers"}
    )
    try:
        message = await receive(ws)
        assert (message["component"], message["op"], message["record_id"]) == (
            "suppliers",
            "create",
            supplier["id"],
        )
        await api("DELETE", f"components/suppliers/records/{supplier['id']}")
        message = await receive(ws)
        assert (message["op"], message["record_id"]) == ("delete", supplier["id"])
    finally:
        ws.close()
    await until(lambda: subscribers(jp_serverapp) == before)  # closed with the socket


async def test_websocket_refuses_bad_requests(jp_ws_fetch: WsFetch) -> None:
    with pytest.raises(HTTPClientError) as bad_token:
        await jp_ws_fetch("appbook", "api", "events", "ws", headers={"Authorization": "token x"})
    assert bad_token.value.code == 403
    with pytest.raises(HTTPClientError) as bad_since:
        await jp_ws_fetch("appbook", "api", "events", "ws", params={"since": "soon"})
    assert bad_since.value.code == 400
    assert bad_since.value.response is not None
    assert body(bad_since.value.response)["error"]["code"] == "bad_request"


@pytest.mark.slow
async def test_kernel_writes_reach_the_websocket(
    published_api: Api, jp_ws_fetch: WsFetch, jp_serverapp: Any, database_url: str
) -> None:
    """A record created in a kernel process (same data layer) arrives over the WebSocket."""
    start = await now(published_api)
    ws = await jp_ws_fetch(
        "appbook", "api", "events", "ws", params={"since": str(start), "component": "suppliers"}
    )
    km = jp_serverapp.kernel_manager
    kernel_id = await km.start_kernel(kernel_name="python3")
    client = km.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=DEADLINE)
        code = (
            "import os, appbook\n"
            f"assert os.environ['APPBOOK_DATABASE_URL'] == {database_url!r}, "
            "os.environ.get('APPBOOK_DATABASE_URL')\n"
            "appbook.connect()['suppliers'].create({'name': 'From kernel'})\n"
        )
        reply = await client.execute_interactive(code, timeout=DEADLINE, output_hook=lambda m: None)
        content = reply["content"]
        assert content["status"] == "ok", (content.get("ename"), content.get("evalue"))
        message = await receive(ws)
        assert (message["component"], message["op"]) == ("suppliers", "create")
        assert message["seq"] > start
        record = body(
            await published_api("GET", f"components/suppliers/records/{message['record_id']}")
        )
        assert record["name"] == "From kernel"
    finally:
        ws.close()
        client.stop_channels()
        await km.shutdown_kernel(kernel_id)


class DenyAppbook(Authorizer):
    """Authenticated, but not allowed anything on Appbook resources."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "appbook"


class TestWithoutPermission:
    @pytest.fixture
    def jp_server_config(self, jp_server_config: Config) -> Config:
        jp_server_config["ServerApp"]["authorizer_class"] = DenyAppbook
        return jp_server_config

    async def test_poll_and_websocket_are_403(self, api: Api, jp_ws_fetch: WsFetch) -> None:
        response = await api("GET", "events", params={"timeout": "0"})
        assert response.code == 403 and body(response)["error"]["code"] == "forbidden"
        with pytest.raises(HTTPClientError) as refused:
            await jp_ws_fetch("appbook", "api", "events", "ws")
        assert refused.value.code == 403
