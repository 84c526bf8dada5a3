"""App users open apps and use the API; kernels of their own, files and terminals are refused.

A second identity ("viewer", with its own token) is an app user through
``AppbookAuthorizer.app_users``; the server owner (pytest-jupyter's token) is not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from tests.extension.test_apps import (
    EXAMPLES,
    REQUEST,
    app_kernels,
    run_in_kernel,
    send_over_socket,
)

VIEWER = {"Authorization": "token viewer-token"}
pytestmark = [pytest.mark.app_kernels, pytest.mark.timeout(180)]


class TwoUsers(IdentityProvider):
    """The owner's token as usual, plus ``viewer-token`` for a user named viewer."""

    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        if handler.request.headers.get("Authorization") == VIEWER["Authorization"]:
            handler._token_authenticated = True  # a token, like the owner's: no XSRF cookie
            return User(username="viewer", name="Viewer")
        user: User | None = await super().get_user(handler)
        return user


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    """The suite's server, with two users and the Appbook authorizer."""
    jp_server_config.ServerApp.identity_provider_class = TwoUsers
    jp_server_config.ServerApp.authorizer_class = "appbook.extension.authz.AppbookAuthorizer"
    jp_server_config.AppbookAuthorizer.app_users = ["viewer"]
    return jp_server_config


@pytest.fixture
def served(jp_serverapp: Any) -> Any:
    jp_serverapp.web_app.settings["appbook_engine"].publish(EXAMPLES / "invoices")
    return jp_serverapp


async def status(jp_fetch: Any, *parts: str, method: str = "GET", body: Any = None) -> int:
    response = await jp_fetch(
        *parts,
        method=method,
        body=None if body is None else json.dumps(body),
        headers=VIEWER,
        raise_error=False,
        follow_redirects=False,
    )
    return int(response.code)


async def test_app_user_reaches_the_api_and_the_apps(served: Any, jp_fetch: Any) -> None:
    created = await jp_fetch(
        "appbook", "api", "components", "invoices", "records",
        method="POST", body=json.dumps({"number": "INV-1", "title": "Paper"}), headers=VIEWER,
    )  # fmt: skip
    assert json.loads(created.body)["created_by"] == "viewer"
    assert await status(jp_fetch, "appbook", "apps", "") == 200
    assert await status(jp_fetch, "appbook", "apps", "invoices") == 200
    # The app's kernel acts as the viewer.
    (kernel_id,) = app_kernels(served)
    got = await run_in_kernel(served, kernel_id, REQUEST)
    assert got["user"] == "viewer" and got["component"] == "invoices"


async def test_app_user_cannot_run_code_elsewhere(
    served: Any, jp_fetch: Any, jp_ws_fetch: Any, tmp_path: Path
) -> None:
    assert await status(jp_fetch, "api", "kernels", method="POST", body={"name": "python3"}) == 403
    assert await status(jp_fetch, "api", "kernels") == 403  # no list of other kernels
    assert await status(jp_fetch, "api", "contents") == 403
    assert await status(jp_fetch, "api", "sessions") == 403
    # A kernel the owner started is not the viewer's to use.
    owner = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    owner_kernel = json.loads(owner.body)["id"]
    assert await status(jp_fetch, "api", "kernels", owner_kernel) == 403
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch("api", "kernels", owner_kernel, "channels", headers=VIEWER)
    assert refused.value.code == 403
    # Their own app's kernel: readable, its socket open, but widget messages only.
    await jp_fetch("appbook", "apps", "invoices", headers=VIEWER)
    (app_kernel,) = app_kernels(served)
    assert await status(jp_fetch, "api", "kernels", app_kernel) == 200
    assert (
        await status(jp_fetch, "api", "kernels", app_kernel, "restart", method="POST", body={})
        == 403
    )
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w')"
    assert (
        await send_over_socket(
            jp_ws_fetch, app_kernel, "execute_request", {"code": code}, headers=VIEWER
        )
        is None
    )
    info = await send_over_socket(
        jp_ws_fetch, app_kernel, "kernel_info_request", {}, headers=VIEWER
    )
    assert info is not None and not marker.exists()


async def test_the_owner_is_not_restricted(served: Any, jp_fetch: Any) -> None:
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    assert response.code == 201
    assert (await jp_fetch("api", "contents")).code == 200
