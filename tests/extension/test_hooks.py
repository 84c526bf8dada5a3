"""POST /appbook/api/hooks/{name}: signed requests start workflows; everything else is refused
with nothing started. A real jupyter_server on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from appbook.server.engine import Appbook
from appbook.server.workflows.webhooks import TokenBucket, Webhooks, sign

SECRET = "hook-secret-1"
ORDERS = """\
name: orders
fields:
  ref: {type: string}
workflows:
  intake:
    trigger: {webhook: shop}
    inputs: {channel: web, amount: 0}
    stages: [{name: s, steps: [{name: done, finish: {}}]}]
  also:
    trigger: {webhook: shop}
    stages: [{name: s, steps: [{name: done, finish: {}}]}]
  other:
    trigger: {webhook: nosecret}
    stages: [{name: s, steps: [{name: done, finish: {}}]}]
"""


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    # Runs stay queued: these tests look at what was started, not at how it runs.
    jp_server_config.AppbookApp.workflow_executor_class = (
        "appbook.server.workflows.executor.NoExecutor"
    )
    return jp_server_config


@pytest.fixture
def engine(jp_serverapp: Any) -> Appbook:
    app: Appbook = jp_serverapp.web_app.settings["appbook_engine"]
    app.publish_texts({"orders.component.yaml": ORDERS})
    app.secrets.set("webhook.shop", SECRET)
    return app


@pytest.fixture
def hook(jp_fetch: Any, engine: Appbook) -> Any:
    """``await hook(body, headers)`` as an outside system: no Jupyter token."""

    async def call(
        body: bytes, headers: dict[str, str] | None = None, name: str = "shop"
    ) -> HTTPResponse:
        response: HTTPResponse = await jp_fetch(
            "appbook",
            "api",
            "hooks",
            name,
            method="POST",
            body=body,
            headers={"Authorization": "", **(headers or {})},
            raise_error=False,
        )
        return response

    return call


def signed(
    body: bytes, *, secret: str = SECRET, at: float | None = None, delivery: str | None = None
) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    headers = {
        "X-Appbook-Timestamp": stamp,
        "X-Appbook-Signature": sign(secret, stamp, body, delivery),
    }
    if delivery is not None:
        headers["X-Appbook-Delivery"] = delivery
    return headers


def error(response: HTTPResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json")
    data: dict[str, Any] = json.loads(response.body)["error"]
    return data


def runs(engine: Appbook) -> list[dict[str, Any]]:
    return engine.runs.query(component="orders", limit=100)


async def test_a_signed_request_starts_the_hooks_workflows(hook: Any, engine: Appbook) -> None:
    body = json.dumps({"amount": 12.5, "sku": "A-1"}).encode()
    response = await hook(body, signed(body))
    assert response.code == 202
    answer = json.loads(response.body)
    assert answer["hook"] == "shop" and answer["duplicate"] is False
    assert sorted(r["workflow"] for r in answer["runs"]) == ["also", "intake"]
    (intake,) = [r for r in runs(engine) if r["workflow"] == "intake"]
    assert intake["inputs"] == {"channel": "web", "amount": 12.5, "sku": "A-1"}
    assert intake["trigger"] == "webhook" and intake["created_by"] == "webhook:shop"


async def test_a_token_header_also_verifies(hook: Any, engine: Appbook) -> None:
    response = await hook(b"{}", {"X-Appbook-Token": SECRET})
    assert response.code == 202 and len(runs(engine)) == 2
    wrong = await hook(b"{}", {"X-Appbook-Token": "guess"})
    assert wrong.code == 401 and "X-Appbook-Token" in error(wrong)["message"]
    assert len(runs(engine)) == 2


async def test_bad_or_missing_signature_is_401_and_starts_nothing(
    hook: Any, engine: Appbook
) -> None:
    body = b'{"amount": 1}'
    missing = await hook(body)
    assert missing.code == 401
    assert error(missing)["code"] == "unauthenticated"
    assert "missing signature" in error(missing)["message"]
    forged = await hook(body, signed(body, secret="not-the-secret"))
    assert forged.code == 401 and "bad X-Appbook-Signature" in error(forged)["message"]
    tampered = await hook(b'{"amount": 1000}', signed(body))  # signature of another body
    assert tampered.code == 401
    no_stamp = await hook(body, {"X-Appbook-Signature": signed(body)["X-Appbook-Signature"]})
    assert no_stamp.code == 401 and "X-Appbook-Timestamp" in error(no_stamp)["message"]
    for stamp in ("12e3", "\u00b2", "-5"):
        odd = await hook(body, {"X-Appbook-Timestamp": stamp, "X-Appbook-Signature": "sha256=0"})
        assert odd.code == 401 and "unix seconds" in error(odd)["message"]
    unset = await hook(body, signed(body), name="nosecret")
    assert unset.code == 401 and "webhook.nosecret is not set" in error(unset)["message"]
    assert runs(engine) == []


async def test_an_old_timestamp_is_a_replay(hook: Any, engine: Appbook) -> None:
    body = b'{"amount": 1}'
    stale = await hook(body, signed(body, at=time.time() - 3600))  # validly signed, an hour ago
    assert stale.code == 401 and "away from the server's clock" in error(stale)["message"]
    assert runs(engine) == []


async def test_the_same_delivery_starts_no_second_run(hook: Any, engine: Appbook) -> None:
    body = b'{"amount": 2}'
    first = await hook(body, signed(body, delivery="evt_123"))
    again = await hook(body, signed(body, delivery="evt_123", at=time.time() + 1))  # resent
    assert first.code == 202 and again.code == 200
    assert json.loads(again.body)["duplicate"] is True
    assert [r["id"] for r in json.loads(first.body)["runs"]] == [
        r["id"] for r in json.loads(again.body)["runs"]
    ]
    # without a delivery id, an identical signed request (a replay in the window) is one too
    same = signed(body)
    assert (await hook(body, same)).code == 202
    assert (await hook(body, same)).code == 200
    assert len(runs(engine)) == 4
    bad = await hook(body, signed(body, delivery="has spaces"))
    assert bad.code == 400 and "X-Appbook-Delivery" in error(bad)["message"]
    # the delivery id is signed: a captured request under another id is refused
    captured = signed(body, delivery="evt_9")
    relabelled = await hook(body, {**captured, "X-Appbook-Delivery": "evt_10"})
    assert relabelled.code == 401
    assert len(runs(engine)) == 4


async def test_unknown_hook_bad_body_and_too_large(
    hook: Any, engine: Appbook, jp_serverapp: Any
) -> None:
    unknown = await hook(b"{}", signed(b"{}"), name="nope")
    assert unknown.code == 404 and "no webhook 'nope'" in error(unknown)["message"]
    not_json = b"amount=1"
    bad = await hook(not_json, signed(not_json))
    assert bad.code == 400 and "not valid JSON" in error(bad)["message"]
    a_list = b"[1, 2]"
    listed = await hook(a_list, signed(a_list))
    assert listed.code == 400 and "JSON object" in error(listed)["message"]
    jp_serverapp.web_app.settings["appbook_webhooks"] = Webhooks(engine, max_body=100)
    big = json.dumps({"text": "x" * 200}).encode()
    large = await hook(big, signed(big))
    assert large.code == 413 and error(large)["code"] == "too_large"
    assert runs(engine) == []


async def test_rate_limit_answers_429_with_retry_after(
    hook: Any, engine: Appbook, jp_serverapp: Any
) -> None:
    jp_serverapp.web_app.settings["appbook_webhooks"] = Webhooks(engine, rate=0.01, burst=2)
    codes = []
    for i in range(3):
        body = json.dumps({"n": i}).encode()
        response = await hook(body, signed(body))
        codes.append(response.code)
    assert codes == [202, 202, 429]
    assert int(response.headers["Retry-After"]) >= 1
    assert error(response)["code"] == "rate_limited"
    assert len(runs(engine)) == 4  # two requests, two workflows each
    forged = await hook(b"{}", signed(b"{}", secret="x"))  # refused before the limit
    assert forged.code == 401


async def test_hooks_are_in_the_openapi_document(api: Any) -> None:
    response = await api("GET", "openapi.json")
    path = json.loads(response.body)["paths"]["/appbook/api/hooks/{name}"]["post"]
    assert set(path["responses"]) >= {"200", "202", "400", "401", "404", "413", "429"}
    assert "X-Appbook-Signature" in {p["name"] for p in path["parameters"]}


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=2)
    assert bucket.take(0.0) == 0 and bucket.take(0.0) == 0
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0  # one token came back in half a second
    assert bucket.take(10.0) == 0 and bucket.take(10.0) == 0  # never more than the burst
    assert bucket.take(10.0) > 0
