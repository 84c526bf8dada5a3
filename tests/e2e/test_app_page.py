"""The app page itself in a real browser: what it loads, from where, what it keeps.

An app page is Appbook's template with Appbook's own front end (a kernel connection and an
ipywidgets manager, ``appbook/extension/apps/frontend``), not Voilà's JupyterLab one.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.e2e.conftest import TOKEN, screenshot, watched
from tests.e2e.test_invoices_app import OPEN, api
from tests.serving import Served

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
FIRST_ROW = ".appbook-grid .widget-button >> nth=0"  # what bench/apps.py waits for
RESOURCES = "performance.getEntriesByType('resource').map(e => [e.name, e.transferSize])"


def kernel_runs(server: Served, kernel_id: str) -> bool:
    """Whether the server still has this kernel (jupyter_server's own API)."""
    request = urllib.request.Request(
        f"{server.url}/api/kernels/{kernel_id}", headers={"Authorization": f"token {TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def test_the_page_loads_its_own_front_end_and_nothing_from_elsewhere(
    server: Served, page: Any
) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{server.url}/appbook/apps/invoices?page=all&token={TOKEN}")
    page.locator(FIRST_ROW).wait_for(timeout=OPEN)
    page.locator(".appbook-grid .fa").first.wait_for()  # the grid's icons are there
    assert page.evaluate("document.fonts.check('14px FontAwesome')")
    assert all(u.startswith(server.url) for u in requested), requested  # no CDN
    assets = [u for u in requested if "/appbook/apps/static/" in u]
    assert len(assets) == 3, requested  # the script, the styles, the icon font
    assert not [u for u in requested if "/voila/" in u or "/widgets/" in u]
    # The page's milestones, in order (bench/apps.py reports them).
    marks = page.evaluate("performance.getEntriesByType('mark').map(m => m.name)")
    assert marks[-1] == "appbook:views" and "appbook:models" in marks
    screenshot(page, "app-invoices-all")


def test_a_returning_browser_asks_nothing_again(server: Served, browser: Any) -> None:
    """Every asset is cached for good: on the second open the browser requests only the
    page (and its kernel's socket)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        for _visit in ("first", "second"):
            page = watched(context.new_page())
            page.goto(f"{server.url}/appbook/apps/invoices?page=all&token={TOKEN}")
            page.locator(FIRST_ROW).wait_for(timeout=OPEN)
            fetched = dict(page.evaluate(RESOURCES))  # of the second visit, in the end
            page.close()
        static = {n: s for n, s in fetched.items() if "/appbook/apps/static/" in n}
        assert len(static) == 3 and set(static.values()) == {0}, fetched  # all from cache
    finally:
        context.close()


def test_a_chart_page_loads_its_widget_library(server: Served, page: Any) -> None:
    for city, value in (("Paris", 5), ("Lyon", 3), ("Nice", 4)):
        api(server, "POST", "components/readings/records", {"city": city, "value": value})
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{server.url}/appbook/apps/readings?token={TOKEN}")
    page.locator(".bqplot .bargroup rect").nth(2).wait_for(timeout=OPEN)
    bundles = [u.split("?")[0].rsplit("/", 2)[-2] for u in requested if "/widgets/" in u]
    assert "bqplot" in bundles  # from the server (the library's AMD bundle), once
    assert all(u.startswith(server.url) for u in requested), requested
    assert page.locator(".bqplot").get_by_text("Paris").count() == 1
    screenshot(page, "app-readings-chart")


def test_closing_the_page_stops_its_kernel(server: Served, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = watched(context.new_page())
        page.goto(f"{server.url}/appbook/apps/invoices?page=all&token={TOKEN}")
        page.locator(FIRST_ROW).wait_for(timeout=OPEN)
        kernel = page.evaluate("window.appbookApp.kernel.id")
        assert kernel_runs(server, kernel)
        page.close(run_before_unload=True)
        deadline = time.monotonic() + 20
        while kernel_runs(server, kernel) and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the server for the kernel, with a deadline
        assert not kernel_runs(server, kernel)
    finally:
        context.close()
