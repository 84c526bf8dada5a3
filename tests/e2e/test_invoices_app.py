"""The invoices app in a real browser, as a user drives it (issue 4, item 7)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.e2e.conftest import TOKEN, screenshot
from tests.serving import Served

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
OPEN = 90_000  # ms: a cold app start loads a kernel, ipywidgets and the data layer


def api(server: Served, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{server.url}/appbook/api/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def open_app(page: Any, server: Served, component: str, query: str = "") -> None:
    page.goto(f"{server.url}/appbook/apps/{component}?{query}&token={TOKEN}".replace("?&", "?"))
    page.locator(".appbook-app").wait_for(timeout=OPEN)


def grid_text(page: Any) -> str:
    return str(page.locator(".appbook-grid").inner_text())


def test_index_links_to_the_apps(server: Served, page: Any) -> None:
    page.goto(f"{server.url}/appbook/apps/?token={TOKEN}")
    page.get_by_role("link", name="Invoice Inventory").click()
    page.locator(".appbook-grid").wait_for(timeout=OPEN)
    screenshot(page, "invoices-all")


def test_add_an_invoice_through_the_form(server: Served, page: Any) -> None:
    api(server, "POST", "components/invoices/records", {"number": "INV-DUP", "title": "Taken"})
    open_app(page, server, "invoices", "page=all")
    page.locator(".appbook-grid").wait_for()
    page.get_by_role("button", name="Add invoice").click()

    number = page.locator(".appbook-field-number input")
    number.wait_for(timeout=OPEN)
    number.fill("INV-DUP")
    page.locator(".appbook-field-title input").fill("Printer paper")
    amount = page.locator(".appbook-field-amount input")
    amount.fill("-5")
    amount.press("Tab")
    page.get_by_role("button", name="Save").click()
    amount_error = page.locator(".appbook-field-amount .appbook-error")
    amount_error.wait_for()
    assert "at least 0" in amount_error.inner_text()
    screenshot(page, "invoices-edit-invalid")

    amount.fill("120.5")
    amount.press("Tab")
    page.get_by_role("button", name="Save").click()
    number_error = page.locator(".appbook-field-number .appbook-error")
    number_error.wait_for()
    assert "already used" in number_error.inner_text()
    assert page.locator(".appbook-field-title input").input_value() == "Printer paper"

    number.fill("INV-E2E-1")
    number.press("Tab")
    page.get_by_role("button", name="Save").click()
    page.locator(".appbook-field-number .appbook-error").wait_for(state="hidden")
    page.get_by_role("button", name="Back").click()
    page.locator(".appbook-grid").get_by_text("INV-E2E-1").wait_for()
    screenshot(page, "invoices-all-after-add")

    saved = api(server, "GET", 'components/invoices/records?where={"number":"INV-E2E-1"}')
    (record,) = saved["items"]
    assert record["amount"] == 120.5 and record["title"] == "Printer paper"
    # Saved by the app's kernel as the signed-in user: the token is the owner's.
    owner = api(server, "POST", "components/invoices/records", {"number": "INV-OWN", "title": "x"})
    assert record["created_by"] == owner["created_by"]


def test_a_record_written_from_a_notebook_appears_without_reload(
    server: Served, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        open_app(page, server, "invoices", "page=all")
        page.locator(".appbook-grid").wait_for()
        run_notebook(
            server,
            tmp_path,
            "import appbook\n"
            "appbook.connect()['invoices'].create("
            "{'number': 'INV-FROM-NB', 'title': 'Written in a notebook', 'amount': 42})",
        )
        # Embedded default: the grid follows the event bus, within about a second.
        page.locator(".appbook-grid").get_by_text("INV-FROM-NB").wait_for(timeout=15_000)
        screenshot(page, "invoices-live")
    finally:
        context.close()


def run_notebook(server: Served, folder: Path, code: str) -> None:
    """Run a one-cell notebook with papermill, in a kernel with the server's data layer."""
    path = folder / "writer.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, path)
    out = folder / "out.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(path), str(out), "-k", "python3"]
    subprocess.run(cmd, env=server.env, check=True, capture_output=True, timeout=120)
