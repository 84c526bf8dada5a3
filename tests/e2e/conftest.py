"""Browser tests: Debian's Chromium driven by Playwright against a real ``appbook serve``.

Playwright's own browser download cannot work here, so it launches ``/usr/bin/chromium``
(``.ci/run`` installs Debian's ``chromium``). Without it the tests are skipped, unless
APPBOOK_TEST_REQUIRE_SERVICES=1 (CI), which makes that a failure. Screenshots of the key
pages are kept in ``.artifacts/screenshots/`` (one of them is in the README).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving import Served, appbook_serve, service_missing

ROOT = Path(__file__).parents[2]
CHROMIUM = os.environ.get("APPBOOK_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
TOKEN = "e2e-token"


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> None:
    """Playwright's sync API runs its own event loop for the whole module; pytest-jupyter's
    per-test loop (closed after each test) would be the one it picked up."""


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> None:
    """No in-process server here (the server is a subprocess): nothing to clean up."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``appbook serve`` with the example apps and a chart page (``components/``), one
    preheated app kernel."""
    folder = tmp_path_factory.mktemp("e2e")
    components = folder / "components"
    shutil.copytree(ROOT / "notebooks" / "examples", components)
    shutil.copytree(Path(__file__).parent / "components", components / "e2e")
    with appbook_serve(
        folder,
        token=TOKEN,
        publish=[components],
        env={"APPBOOK_APP_POOL_SIZE": "1"},
    ) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium."""
    if not Path(CHROMIUM).exists():
        service_missing("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page (no cookies shared with other tests). The page's
    console and errors are printed (pytest shows them when the test fails)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield watched(context.new_page())
    finally:
        context.close()


def watched(page: Any) -> Any:
    """``page``, its console and errors printed (pytest shows them when a test fails)."""
    page.on("console", lambda m: print(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: print(f"page error: {e}"))
    return page


def screenshot(page: Any, name: str) -> Path:
    """Keep a PNG of what the user sees."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
