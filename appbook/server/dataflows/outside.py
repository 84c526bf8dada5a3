"""Steps that reach outside services: ``http_get`` (items from a JSON API), ``http_call``
(a request per item) and ``notify`` (the workflows' e-mail or webhook, per item, sent once
the run has committed, so a rolled-back run tells nobody). Calls go through the guarded
client of :mod:`appbook.server.http` (SSRF guard, timeouts, retries); secrets come from the
secret store and never appear in items, logs or errors."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..errors import OutboundError
from ..expressions import render
from ..http import OutboundClient, safe_url
from ..outbound import OutboundConfig
from .calls import as_items
from .context import Chunk, Chunks, Item, StepCall

CHUNK = 1000


def _headers(call: StepCall, context: dict[str, Any]) -> dict[str, str]:
    config = call.config
    headers = {k: render(v, context) for k, v in config.headers.items()}
    if config.secret is not None:
        headers["Authorization"] = f"Bearer {call.flow.state.app.secrets.get(config.secret)}"
    return headers


def _client(call: StepCall) -> OutboundClient:
    return OutboundClient(OutboundConfig(parent=call.flow.state.app.config))


def _answer(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def http_get(call: StepCall) -> Chunks:
    """The answer's items (a JSON list, one object, or what ``items`` picks), in chunks."""
    config, context = call.config, call.flow.names()
    url = render(config.url, context)
    params = {k: render(v, context) for k, v in config.params.items()}
    with _client(call) as client:
        response = client.request("GET", url, params=params, headers=_headers(call, context))
    data = _answer(response)
    if config.items is not None:
        data = call.eval(config.items, response=data)
    elif isinstance(data, str):
        raise OutboundError(f"GET {safe_url(url)} did not answer JSON")
    items = as_items(data)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def http_call(call: StepCall) -> Chunks:
    """One request per item; each item goes on with ``{status, body}`` under ``into``."""
    from ..notify import _fill, _jsonable

    config = call.config
    with _client(call) as client:
        for _, items in call.items():
            out: Chunk = []
            for item in items:
                context = call.flow.names(item=item)
                body = item if config.body is None else _fill(config.body, context)
                headers = {"Content-Type": "application/json", **_headers(call, context)}
                content = json.dumps(body, default=_jsonable).encode()
                url = render(config.url, context)
                response = client.request(config.method, url, content=content, headers=headers)
                answer = {"status": response.status_code, "body": _answer(response)}
                out.append({**item, config.into: answer})
            yield out


def notify(call: StepCall) -> Chunks:
    """Queue the notification of each item for after the commit; the items go on."""
    from .. import notify as notifications

    state, spec, run_key = call.flow.state, call.config, uuid.uuid4().hex
    for chunk, items in call.items():
        for item in items:
            context = call.flow.names(item=item)
            key = f"dataflow:{run_key}:{call.step.name}:{call.item_number}"
            state.writer.after_commit.append(_sender(state.app, spec, context, key, notifications))
        yield chunk


def _sender(app: Any, spec: Any, context: Item, key: str, notifications: Any) -> Any:
    if spec.email is not None:
        return lambda: notifications.email(app, spec.email, context, key=key)
    return lambda: notifications.webhook(app, spec.webhook, context, key=key)
