"""The webhook limits are server settings: ``c.AppbookApp.webhook_rate``, ``webhook_burst``,
``webhook_max_body`` and ``webhook_tolerance`` reach the receiver a real server uses."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from appbook.server.engine import Appbook
from tests.extension.test_hooks import engine, error, runs, signed  # noqa: F401 (engine: a fixture)


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    jp_server_config.AppbookApp.workflow_executor_class = (
        "appbook.server.workflows.executor.NoExecutor"
    )
    jp_server_config.AppbookApp.webhook_rate = 0.01
    jp_server_config.AppbookApp.webhook_burst = 1
    jp_server_config.AppbookApp.webhook_max_body = 64
    jp_server_config.AppbookApp.webhook_tolerance = 30.0
    return jp_server_config


async def post(jp_fetch: Any, body: bytes, headers: dict[str, str]) -> HTTPResponse:
    response: HTTPResponse = await jp_fetch(
        "appbook",
        "api",
        "hooks",
        "shop",
        method="POST",
        body=body,
        headers={"Authorization": "", **headers},
        raise_error=False,
    )
    return response


@pytest.mark.usefixtures("engine")  # test_hooks' fixture: the orders component and its hook
async def test_configured_limits_apply(jp_fetch: Any, jp_serverapp: Any) -> None:
    app: Appbook = jp_serverapp.web_app.settings["appbook_engine"]
    big = json.dumps({"text": "x" * 100}).encode()
    large = await post(jp_fetch, big, signed(big))
    assert large.code == 413 and "64" in error(large)["message"]
    # 60 s off is inside the default replay window (300 s), outside the configured 30 s.
    old = await post(jp_fetch, b"{}", signed(b"{}", at=time.time() - 60))
    assert old.code == 401
    first = await post(jp_fetch, b"{}", signed(b"{}"))
    again = await post(jp_fetch, b'{"n": 2}', signed(b'{"n": 2}'))
    assert (first.code, again.code) == (202, 429)  # a burst of one
    assert len(runs(app)) == 2  # the one accepted request, two workflows
