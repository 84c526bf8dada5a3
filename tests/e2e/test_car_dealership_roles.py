"""The car dealership's managers grid, which only the managers role may open, in a real
browser against a real ``appbook serve`` with two signed-in users: mona (managers) and carl
(no role). Carl is refused in the status line and with a 403 page; mona sees the grid."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, TOKEN, screenshot
from tests.e2e.test_invoices_app import OPEN, api
from tests.identities import token_of
from tests.serving import Served, appbook_serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
REFUSED = "You need the role managers to open Transaction specialists."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``appbook serve`` with the dealership, mona and carl signing in with their own tokens
    (tests.identities), mona registered as a manager, carl with no role."""
    folder = tmp_path_factory.mktemp("e2e-roles")
    shutil.copytree(ROOT / "notebooks" / "examples" / "car_dealership", folder / "components")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    with appbook_serve(
        folder,
        token=TOKEN,
        publish=[folder / "components"],
        env={"APPBOOK_APP_POOL_SIZE": "1", "PYTHONPATH": path},
        args=[
            "--ServerApp.identity_provider_class=tests.identities.TokenUsers",
            "--TokenUsers.users=mona",
            "--TokenUsers.users=carl",
        ],
    ) as served:
        for user, roles in (("mona", ["--role", "managers"]), ("carl", [])):
            command = [sys.executable, "-m", "appbook", "users", "add", user, *roles]
            subprocess.run(command, env=served.env, cwd=folder, check=True)
        api(served, "POST", "components/managers/records", {"name": "Anna Martin", "email": "anna@example.org"})  # fmt: skip
        yield served


def open_cars_as(page: Any, server: Served, user: str) -> None:
    """Sign in as ``user`` (their token, once; the login cookie then) on the cars app."""
    page.goto(f"{server.url}/appbook/apps/cars?token={token_of(user)}")
    page.locator(".appbook-grid").wait_for(timeout=OPEN)


def test_a_clerk_is_refused_the_managers_grid(server: Served, page: Any) -> None:
    open_cars_as(page, server, "carl")
    page.get_by_role("button", name="Managers").click()
    status = page.locator(".appbook-status.appbook-error", has_text=REFUSED)
    status.wait_for()
    # Still on the lot: the managers grid never rendered.
    assert page.get_by_role("heading", name="Cars without a manager").is_visible()
    assert page.get_by_text("Anna Martin").count() == 0
    assert page.get_by_role("button", name="Add a manager").count() == 0
    screenshot(page, "cars-managers-refused")

    # The managers app's own address: a 403 page, and a way back to the apps.
    response = page.goto(f"{server.url}/appbook/apps/managers")
    assert response is not None and response.status == 403
    assert page.locator(".appbook-refused").inner_text() == REFUSED
    screenshot(page, "cars-managers-403")
    page.get_by_role("link", name="Back to the apps").click()
    page.get_by_role("heading", name="Apps").wait_for()
    assert page.get_by_role("link", name="Car Fleet").is_visible()
    assert page.get_by_role("link", name="Transaction specialists").count() == 0  # not listed


def test_a_manager_opens_the_managers_grid(server: Served, page: Any) -> None:
    open_cars_as(page, server, "mona")
    page.get_by_role("button", name="Managers").click()
    page.get_by_role("heading", name="Transaction specialists").wait_for()
    page.locator(".appbook-grid").get_by_text("Anna Martin").wait_for()
    assert page.locator(".appbook-status.appbook-error").count() == 0
    screenshot(page, "cars-managers-grid")
    # And directly, from the index that lists it for her.
    page.goto(f"{server.url}/appbook/apps/")
    page.get_by_role("link", name="Transaction specialists").first.click()
    page.locator(".appbook-grid").get_by_text("Anna Martin").wait_for(timeout=OPEN)
