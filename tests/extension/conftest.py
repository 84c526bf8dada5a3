"""A real jupyter_server with the Appbook extension, on SQLite and on PostgreSQL.

Tests marked ``app_kernels`` start app kernels (tests/extension/test_apps.py and
test_app_users.py): they run on SQLite only (kernels are slow to start, and the data layer
suite covers both backends) with the installed Jupyter data path, where Voilà's and
nbconvert's templates and the widget libraries are.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

FIXTURES = Path(__file__).parent.parent / "fixtures"
# pytest-jupyter points the environment's data path at a temporary folder; apps need the
# real one (see the module docstring).
REAL_ENV_PATH = Path(sys.prefix) / "share" / "jupyter"
APP_KERNELS = "app_kernels"

Api = Callable[..., Awaitable[HTTPResponse]]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``app_kernels`` marker."""
    config.addinivalue_line(
        "markers", f"{APP_KERNELS}: starts app kernels (SQLite only, installed Jupyter data)"
    )


@pytest.hookimpl(tryfirst=True)  # before parametrize marks and fixture parameters apply
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``app_kernels`` tests: one backend (a parametrize mark takes precedence over the
    ``database_url`` fixture's own parameters)."""
    if metafunc.definition.get_closest_marker(APP_KERNELS) and (
        "database_url" in metafunc.fixturenames
    ):
        one = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
        metafunc.definition.add_marker(one)


@pytest.fixture
def jp_env_jupyter_path(request: pytest.FixtureRequest, jp_env_jupyter_path: str) -> str:
    """``app_kernels`` tests: the installed share/jupyter; others: pytest-jupyter's own."""
    if request.node.get_closest_marker(APP_KERNELS):
        return str(REAL_ENV_PATH)
    return jp_env_jupyter_path


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
