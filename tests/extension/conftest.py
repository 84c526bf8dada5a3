"""A real jupyter_server with the Appbook extension, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

FIXTURES = Path(__file__).parent.parent / "fixtures"

Api = Callable[..., Awaitable[HTTPResponse]]


@pytest.fixture
def jp_server_config(tmp_path: Path, database_url: str) -> Config:
    """The extension on, unauthenticated access off (undecorated handlers would warn)."""
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {
                    "appbook.extension": True,
                    "jupyter_server_terminals": False,
                },
                "allow_unauthenticated_access": False,
            },
            "AppbookApp": {
                "home": str(tmp_path / "home"),
                "database_url": database_url,
                "redis_url": "",
                # No preheated app kernels unless a test asks (each is a Python process).
                "app_pool_size": 0,
            },
        }
    )


@pytest.fixture
def api(jp_fetch: Any) -> Api:
    """``await api("GET", "components", params=..., json=...)`` without raising on errors."""

    async def call(
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | str | None = None,
        **kwargs: Any,
    ) -> HTTPResponse:
        if json_body is not None:
            body = json.dumps(json_body)
        if body is None and method in ("POST", "PATCH", "PUT"):
            body = b""
        parts = ["appbook", "api", *path.split("/")]
        response: HTTPResponse = await jp_fetch(
            *parts, method=method, body=body, raise_error=False, **kwargs
        )
        return response

    return call


def body(response: HTTPResponse) -> Any:
    """The JSON body of a response."""
    return json.loads(response.body)


@pytest.fixture
def published_api(api: Api, jp_serverapp: Any) -> Api:
    """The API with the all-field-types fixture components published (by the server's engine)."""
    jp_serverapp.web_app.settings["appbook_engine"].publish(FIXTURES / "all_types")
    return api
