"""A page's ``roles:`` at the server: ``/appbook/apps/{component}`` answers 403 for a page
the signed-in user may not open, before any kernel is used; the app index lists only the
pages (and apps) that open for them.

Real server (pytest-jupyter) with named users (``tests.identities.TokenUsers``): mona holds
managers, carl does not; pytest-jupyter's own token is the server's owner, a maker.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from appbook.extension.apps import APP_NOTEBOOK
from appbook.extension.apps.handlers import index_html
from appbook.server import access
from appbook.server.engine import Appbook
from tests.extension.test_apps import EXAMPLES, SHOWN, app_kernels, run_in_kernel, until
from tests.identities import TokenUsers, token_of

pytestmark = [pytest.mark.app_kernels, pytest.mark.timeout(180)]
DESK = """\
name: desk
title: Front desk
fields:
  note: {type: string}
pages:
  back_office:
    title: Back office
    roles: [managers, accounting]
    layout: [{grid: {}}]
  front:
    title: Front
    layout: [{grid: {}}]
"""


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    """The suite's server with two named users besides its owner."""
    jp_server_config.ServerApp.identity_provider_class = TokenUsers
    jp_server_config.TokenUsers.users = ["mona", "carl"]
    return jp_server_config


@pytest.fixture
def engine(jp_serverapp: Any, tmp_path: Path) -> Appbook:
    """The server's engine: the dealership and the desk published, mona a manager."""
    app: Appbook = jp_serverapp.web_app.settings["appbook_engine"]
    folder = tmp_path / "defs"
    shutil.copytree(EXAMPLES / "car_dealership", folder)
    (folder / "desk.component.yaml").write_text(DESK)
    app.publish(folder)
    app.users.add("mona", roles=["managers"])
    app.users.add("carl", roles=["clerks"])
    return app


async def get(jp_fetch: Any, user: str | None, *parts: str, **params: str) -> HTTPResponse:
    """GET as ``user`` (None: the owner's token), without raising on errors."""
    headers = {} if user is None else {"Authorization": f"token {token_of(user)}"}
    response: HTTPResponse = await jp_fetch(
        *parts, params=params, headers=headers, raise_error=False, follow_redirects=False
    )
    return response


async def test_a_page_the_user_may_not_open_is_403_before_any_kernel(
    engine: Appbook, jp_fetch: Any, jp_serverapp: Any, jp_base_url: str
) -> None:
    for title, params in [
        ("Transaction specialists", {}),
        ("Transaction specialists", {"page": "all"}),
        ("Manager", {"page": "edit", "id": "1"}),  # the manager's form is theirs too
    ]:
        response = await get(jp_fetch, "carl", "appbook", "apps", "managers", **params)
        assert response.code == 403, params
        assert response.headers["Content-Type"].startswith("text/html")
        page = response.body.decode()
        assert f"You need the role managers to open {title}." in page, page
        assert f"href='{jp_base_url}appbook/apps/'" in page  # back to the app index
        assert "widget-view" not in page  # nothing of the app itself
    # The first page is checked when no page is asked for; one that opens, opens.
    desk = await get(jp_fetch, "carl", "appbook", "apps", "desk")
    assert desk.code == 403
    assert "You need one of the roles managers, accounting to open Back office" in (
        desk.body.decode()
    )
    assert app_kernels(jp_serverapp) == []  # no kernel was started or taken for them
    # A user the server does not know in its users table holds no role either.
    engine.users.remove("carl")
    response = await get(jp_fetch, "carl", "appbook", "apps", "managers")
    assert response.code == 403 and app_kernels(jp_serverapp) == []


async def test_a_manager_opens_the_grid_and_the_kernel_acts_as_them(
    engine: Appbook, jp_fetch: Any, jp_serverapp: Any
) -> None:
    response = await get(jp_fetch, "mona", "appbook", "apps", "managers")
    assert response.code == 200 and "widget-view" in response.body.decode()
    (kernel_id,) = app_kernels(jp_serverapp)
    assert await run_in_kernel(jp_serverapp, kernel_id, SHOWN) == ["all", "mona"]
    # Disabled, she keeps her history but not her access.
    engine.users.disable("mona")
    refused = await get(jp_fetch, "mona", "appbook", "apps", "managers")
    assert refused.code == 403 and app_kernels(jp_serverapp) == [kernel_id]


def links(page: str) -> set[str]:
    """The app addresses an index page links to (after the base URL)."""
    import re

    return set(re.findall(r"href='[^']*?appbook/apps/([^']*)'", page))


async def test_the_index_lists_only_what_opens(engine: Appbook, jp_fetch: Any) -> None:
    carl = links((await get(jp_fetch, "carl", "appbook", "apps", "")).body.decode())
    assert "cars" in carl and "cars?page=fleet" in carl
    assert not any(link.startswith("managers") for link in carl)  # every page closed: no app
    # The desk's first page is closed to carl: its link opens the first page that opens.
    assert "desk?page=front" in carl and "desk" not in carl
    assert "desk?page=back_office" not in carl
    mona = links((await get(jp_fetch, "mona", "appbook", "apps", "")).body.decode())
    assert {"managers", "managers?page=all", "desk", "desk?page=back_office"} <= mona
    assert "managers?page=edit" not in mona  # it takes a record id: reached from the app
    owner = links((await get(jp_fetch, None, "appbook", "apps", "")).body.decode())
    assert owner >= mona  # a maker sees every page


def test_index_html_without_a_viewer_lists_everything(engine: Appbook) -> None:
    everything = links(index_html("/", engine.registry.all()))
    closed = links(index_html("/", engine.registry.all(), access.Viewer("carl")))
    assert {"managers", "desk", "desk?page=back_office"} <= everything
    assert closed == everything - {"managers", "managers?page=all", "desk", "desk?page=back_office"} | {"desk?page=front"}  # fmt: skip


async def test_a_preheated_kernel_builds_a_restricted_first_page_for_its_user(
    engine: Appbook, jp_fetch: Any, jp_serverapp: Any
) -> None:
    # A kernel preheated for the managers app does not build its first page ahead (nobody
    # may open it); handed to mona (a manager), it builds it for her.
    kernels = jp_serverapp.web_app.settings["appbook_app_kernels"]
    kernels.pool_size, kernels.fill_delay = 1, 0.0
    kernels.fill(APP_NOTEBOOK, "managers")
    await until(lambda: kernels.ready(APP_NOTEBOOK, "managers") == 1, "a preheated kernel")
    (preheated,) = app_kernels(jp_serverapp)
    refused = await get(jp_fetch, "carl", "appbook", "apps", "managers")
    assert refused.code == 403 and kernels.preheated_served == 0  # not handed to carl
    response = await get(jp_fetch, "mona", "appbook", "apps", "managers")
    assert response.code == 200 and kernels.preheated_served == 1
    assert "You need the role" not in response.body.decode()  # never shown to her
    assert await run_in_kernel(jp_serverapp, preheated, SHOWN) == ["all", "mona"]
    await kernels.close()
