"""Dataflow steps that call outside services (a local HTTP server stands in for them):
http_get, http_call and notify, through the guarded client, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appbook.server.engine import Appbook
from appbook.server.errors import OutboundError, OutboundRefused
from tests.server.outside import Receiver

MAKERS = """\
name: makers
fields:
  name: {type: string, required: true, unique: true}
dataflows:
  fetch:
    stages:
      - name: s
        steps:
          - {name: get, http_get: {url: "{{ inputs.url }}", params: {page: "1"}, secret: api}}
          - {name: save, create: {fields: {name: "item.name"}}}
          - {name: out, respond: {value: "items | map(attribute='name') | list"}}
  pick:
    stages:
      - name: s
        steps:
          - {name: get, http_get: {url: "{{ inputs.url }}", items: "response.data"}}
          - {name: out, respond: {}}
  push:
    stages:
      - name: s
        steps:
          - {name: all, query: {order_by: [name]}}
          - {name: post, http_call: {url: "{{ inputs.url }}", body: {who: "{{ item.name }}", n: "{{ item.id }}"}}}
          - {name: out, respond: {value: "items | map(attribute='response') | list"}}
  tell:
    stages:
      - name: s
        steps:
          - {name: form, action_model: {}}
          - {name: names, expand: {field: names, as: name}}
          - {name: made, create: {fields: {name: "item.name"}}}
          - {name: hook, notify: {webhook: {url: "{{ inputs.url }}", body: {name: "{{ item.name }}"}}}}
"""


@pytest.fixture
def makers(app: Appbook) -> Appbook:
    app.publish_texts({"makers.component.yaml": MAKERS})
    app.secrets.set("api", "s3cret-token")
    return app


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("APPBOOK_OUTBOUND_ALLOW_PRIVATE", "127.0.0.1/32")
    monkeypatch.setenv("APPBOOK_OUTBOUND_RETRIES", "0")
    with Receiver() as server:
        yield server


def test_http_get_reads_items_with_a_secret(makers: Appbook, receiver: Receiver) -> None:
    receiver.body = b'[{"name": "VW"}, {"name": "Fiat"}]'
    result = makers["makers"].run_dataflow("fetch", {"url": receiver.url("/makers")})
    assert result.value == ["VW", "Fiat"] and makers["makers"].count() == 2
    [hit] = receiver.hits
    assert hit.method == "GET" and hit.path == "/makers?page=1"
    assert hit.headers["authorization"] == "Bearer s3cret-token"
    assert "s3cret" not in str(result.to_dict())
    receiver.body = b'{"data": [{"name": "Seat"}]}'
    picked = makers["makers"].run_dataflow("pick", {"url": receiver.url("/x")})
    assert picked.value == [{"name": "Seat"}]


def test_loopback_is_refused_unless_allowed(
    makers: Appbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Receiver() as server:
        with pytest.raises(OutboundRefused, match=r"stage s, step get: GET .* refused"):
            makers["makers"].run_dataflow("pick", {"url": server.url()})
        assert server.hits == []


def test_http_call_sends_each_item(makers: Appbook, receiver: Receiver) -> None:
    makers["makers"].create({"name": "A"})
    makers["makers"].create({"name": "B"})
    result = makers["makers"].run_dataflow("push", {"url": receiver.url()})
    assert result.value == [{"status": 200, "body": {"ok": True}}] * 2
    assert [h.json()["who"] for h in receiver.hits] == ["A", "B"]
    assert isinstance(receiver.hits[0].json()["n"], int)  # a lone {{ expr }} keeps its type
    receiver.answer(200, 422)
    with pytest.raises(OutboundError, match=r"step post, item 2 \(id \d+\): POST .* failed"):
        makers["makers"].run_dataflow("push", {"url": receiver.url()})


def test_notify_sends_after_the_commit_and_not_on_rollback(
    makers: Appbook, receiver: Receiver
) -> None:
    makers["makers"].run_dataflow("tell", {"url": receiver.url(), "names": ["A", "B"]})
    assert sorted(h.json()["name"] for h in receiver.hits) == ["A", "B"]
    keys = {h.headers["idempotency-key"] for h in receiver.hits}
    assert len(keys) == 2
    receiver.hits.clear()
    with pytest.raises(Exception, match="already used"):
        makers["makers"].run_dataflow("tell", {"url": receiver.url(), "names": ["C", "A"]})
    assert receiver.hits == [] and makers["makers"].count({"name": "C"}) == 0
