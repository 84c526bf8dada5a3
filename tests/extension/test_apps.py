"""Apps served by Voilà inside the server: index, pages, user binding, preheating, the guard.

Real server (pytest-jupyter), real kernels running the packaged app notebook. What the
widgets show is checked in the browser tests (tests/e2e); here we check what the server
does: which kernel serves which request, as whom, and what a page may send to it.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import AsyncKernelClient
from jupyter_client.session import Session
from tornado.httpclient import HTTPClientError

import appbook.extension.apps as appbook_apps
from appbook.extension.apps import APP_NOTEBOOK
from appbook.extension.apps.assets import STATIC_DIR, manifest

EXAMPLES = Path(__file__).parents[2] / "notebooks" / "examples"
pytestmark = [pytest.mark.app_kernels, pytest.mark.timeout(180)]


@pytest.fixture
def apps_server(jp_serverapp: Any) -> Any:
    """The server with the invoices example published."""
    engine = jp_serverapp.web_app.settings["appbook_engine"]
    engine.publish(EXAMPLES / "invoices")
    return jp_serverapp


def app_kernels(serverapp: Any) -> list[str]:
    km = serverapp.kernel_manager
    return [k for k in km.list_kernel_ids() if getattr(km.get_kernel(k), "appbook_app", False)]


async def run_in_kernel(serverapp: Any, kernel_id: str, code: str) -> Any:
    """The JSON value of ``code`` evaluated in a kernel, asked from the server side (the
    way the server itself can reach a kernel, not through the page's socket)."""
    client = AsyncKernelClient()
    client.load_connection_info(
        serverapp.kernel_manager.get_kernel(kernel_id).get_connection_info()
    )
    outputs: list[dict[str, Any]] = []
    client.start_channels()
    try:
        reply = await client.execute_interactive(
            code, store_history=False, timeout=60, output_hook=outputs.append
        )
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok", reply["content"]
    for msg in outputs:
        if msg["msg_type"] == "execute_result":
            return json.loads(ast.literal_eval(msg["content"]["data"]["text/plain"]))
    raise AssertionError(f"no result from {code!r}: {outputs}")


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SHOWN = (
    "import json\nfrom appbook.kernels import apprun\n"
    "view = apprun._shell.box.children[0]\n"
    "json.dumps([view.current.name, view.app.actor])"
)
REQUEST = (
    "import json, dataclasses\nfrom appbook.kernels.apprun import current_request\n"
    "json.dumps(dataclasses.asdict(current_request()))"
)


async def test_index_lists_apps_with_their_pages(apps_server: Any, jp_fetch: Any) -> None:
    response = await jp_fetch("appbook", "apps", "")
    page = response.body.decode()
    assert "appbook/apps/invoices'>" in page
    assert "?page=all" in page
    assert "?page=edit" not in page  # it takes a record id: reached from the app
    assert "suppliers" not in page  # no pages, no app


async def test_unknown_app_is_404(apps_server: Any, jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("appbook", "apps", "nope")
    assert err.value.code == 404


async def test_unauthenticated_app_is_refused(apps_server: Any, jp_fetch: Any) -> None:
    for parts in (("apps", ""), ("apps", "invoices")):
        response = await jp_fetch(
            "appbook",
            *parts,
            headers={"Authorization": ""},
            raise_error=False,
            follow_redirects=False,
        )
        assert response.code in (302, 401, 403), parts  # 302: to the login page (HTML pages)
        assert "login" in response.headers.get("Location", "login")


async def test_cold_app_runs_the_request_as_the_signed_in_user(
    apps_server: Any, jp_fetch: Any
) -> None:
    response = await jp_fetch(
        "appbook",
        "apps",
        "invoices",
        params={"page": "edit", "id": "7"},
        headers={"X-Appbook-User": "mallory"},  # a browser cannot choose who it acts as
    )
    page = response.body.decode()
    assert response.code == 200 and "application/vnd.jupyter.widget-view+json" in page
    assert "Traceback" not in page and "cannot open" not in page
    (kernel_id,) = app_kernels(apps_server)
    got = await run_in_kernel(apps_server, kernel_id, REQUEST)
    engine = apps_server.web_app.settings["appbook_engine"]
    assert got == {
        "component": "invoices",
        "page": "edit",
        "params": {"id": "7"},
        "user": engine.actor,
    }


async def test_preheated_kernel_serves_the_request_then_the_pool_refills(
    apps_server: Any, jp_fetch: Any
) -> None:
    kernels, preheated = await preheated_invoices(apps_server)
    # Its first page is rendered (widgets included) before any request.
    renderer = kernels._pools[(APP_NOTEBOOK, "invoices")][0].result()["renderer"]
    await until(
        lambda: any(WIDGET_VIEW in html for html in renderer.rendered_cache), "the page rendered"
    )
    response = await jp_fetch("appbook", "apps", "invoices", params={"page": "all"})
    assert response.code == 200
    assert WIDGET_VIEW in response.body.decode()
    assert kernels.preheated_served == 1
    # Handed over: the request (and the user) reached it, and the page now acts as the user.
    engine = apps_server.web_app.settings["appbook_engine"]
    assert await run_in_kernel(apps_server, preheated, REQUEST) == {
        "component": "invoices",
        "page": "all",
        "params": {},
        "user": engine.actor,
    }
    assert await run_in_kernel(apps_server, preheated, SHOWN) == ["all", engine.actor]
    # Another page of the same app: the refilled kernel renders it after the hand-over.
    await until(lambda: kernels.ready(APP_NOTEBOOK, "invoices") == 1, "the pool refilled")
    (refilled,) = set(app_kernels(apps_server)) - {preheated}
    await jp_fetch("appbook", "apps", "invoices", params={"page": "edit", "id": "3"})
    assert kernels.preheated_served == 2
    assert await run_in_kernel(apps_server, refilled, SHOWN) == ["edit", engine.actor]
    # An app without a pool yet gets one on its first (cold) request.
    assert kernels.ready(APP_NOTEBOOK, "suppliers") == 0
    await jp_fetch("appbook", "apps", "suppliers", raise_error=False)
    await until(lambda: kernels.ready(APP_NOTEBOOK, "suppliers") == 1, "a pool for suppliers")
    await kernels.close()


async def test_closing_kills_the_pool_kernels_quietly_and_keeps_served_ones(
    apps_server: Any, jp_fetch: Any
) -> None:
    kernels, served = await preheated_invoices(apps_server)
    await jp_fetch("appbook", "apps", "invoices", params={"page": "all"})  # handed over
    await until(lambda: kernels.ready(APP_NOTEBOOK, "invoices") == 1, "the pool refilled")
    (waiting,) = set(app_kernels(apps_server)) - {served}
    handler = Kept(level=logging.ERROR)
    apps_server.log.addHandler(handler)
    try:
        await kernels.close()
    finally:
        apps_server.log.removeHandler(handler)
    # The waiting kernel is gone at once; the page's kernel is the server's to stop.
    assert app_kernels(apps_server) == [served]
    assert [r.getMessage() for r in handler.records] == []
    assert waiting not in apps_server.kernel_manager


async def preheated_invoices(apps_server: Any) -> tuple[Any, str]:
    """The server's app kernels with a pool of one for invoices, and its preheated kernel."""
    kernels = apps_server.web_app.settings["appbook_app_kernels"]
    kernels.pool_size, kernels.fill_delay = 1, 0.0
    kernels.fill(APP_NOTEBOOK, "invoices")
    await until(lambda: kernels.ready(APP_NOTEBOOK, "invoices") == 1, "a preheated kernel")
    (kernel_id,) = app_kernels(apps_server)
    return kernels, kernel_id


class Kept(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def until(check: Any, what: str, timeout: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_page_cannot_execute_code_in_an_app_kernel(
    apps_server: Any, jp_fetch: Any, jp_ws_fetch: Any, tmp_path: Path
) -> None:
    await jp_fetch("appbook", "apps", "invoices")
    (kernel_id,) = app_kernels(apps_server)
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    refused = await send_over_socket(jp_ws_fetch, kernel_id, "execute_request", {"code": code})
    assert refused is None  # no reply: the message never reached the kernel
    info = await send_over_socket(jp_ws_fetch, kernel_id, "kernel_info_request", {})
    assert info is not None and info["msg_type"] == "kernel_info_reply"
    await asyncio.sleep(1)
    assert not marker.exists()


async def test_notebook_kernels_still_execute(
    apps_server: Any, jp_fetch: Any, jp_ws_fetch: Any, tmp_path: Path
) -> None:
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(response.body)["id"]
    marker = tmp_path / "ok"
    reply = await send_over_socket(
        jp_ws_fetch, kernel_id, "execute_request", {"code": f"open({str(marker)!r}, 'w')"}
    )
    assert reply is not None and reply["content"]["status"] == "ok"
    assert marker.exists()


async def send_over_socket(
    jp_ws_fetch: Any,
    kernel_id: str,
    msg_type: str,
    content: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Send one shell message as a page would; the reply, or None if none came in 5 s."""
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels", headers=headers)
    session = Session()
    msg = session.msg(msg_type, content)
    msg["channel"] = "shell"
    if msg_type == "execute_request":
        msg["content"] = {
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
            **content,
        }
    ws.write_message(json.dumps(msg, default=str))
    try:
        while True:
            raw = await asyncio.wait_for(ws.read_message(), 5)
            if raw is None:
                return None
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") == msg["header"]["msg_id"] and (
                reply["msg_type"].endswith("_reply")
            ):
                return dict(reply)
    except TimeoutError:
        return None
    finally:
        ws.close()


async def test_idle_app_kernels_are_shut_down_but_not_connected_ones_or_notebooks(
    apps_server: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    kernels = apps_server.web_app.settings["appbook_app_kernels"]
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    notebook_kernel = json.loads(response.body)["id"]
    await jp_fetch("appbook", "apps", "invoices")
    (open_page,) = app_kernels(apps_server)
    ws = await jp_ws_fetch("api", "kernels", open_page, "channels")  # a page still open
    await jp_fetch("appbook", "apps", "invoices", params={"page": "edit"})
    (closed_page,) = set(app_kernels(apps_server)) - {open_page}  # its tab is gone
    assert await kernels.cull(3600) == []  # not idle long enough
    assert await kernels.cull(0) == [closed_page]
    assert app_kernels(apps_server) == [open_page]
    assert notebook_kernel in apps_server.kernel_manager.list_kernel_ids()
    ws.close()


async def test_the_refill_waits_for_the_page_to_connect(
    apps_server: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    """Preparing the next kernel while a page opens would hold the page up: the pool refills
    once the page has been connected to its kernel for a moment (or after fill_delay)."""
    kernels = apps_server.web_app.settings["appbook_app_kernels"]
    kernels.pool_size, kernels.fill_delay, kernels.fill_settle = 1, 120.0, 0.3
    kernels.fill(APP_NOTEBOOK, "invoices")
    await until(lambda: kernels.ready(APP_NOTEBOOK, "invoices") == 1, "a preheated kernel")
    await jp_fetch("appbook", "apps", "invoices")
    (served,) = app_kernels(apps_server)
    await asyncio.sleep(1.5)
    assert app_kernels(apps_server) == [served]  # no page yet: nothing started
    ws = await jp_ws_fetch("api", "kernels", served, "channels")  # the page connects
    await until(lambda: kernels.ready(APP_NOTEBOOK, "invoices") == 1, "the pool refilled")
    ws.close()
    await kernels.close()


# -- what the page loads ---------------------------------------------------------------
ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""")
CONFIG = re.compile(r'<script id="appbook-app-config" type="application/json">(.*?)</script>', re.S)


def local_parts(url: str, base_url: str) -> list[str]:
    """``jp_fetch`` arguments for an address on the test server."""
    assert url.startswith(base_url), url
    return url[len(base_url) :].split("/")


async def test_the_page_loads_only_its_own_hashed_assets(
    apps_server: Any, jp_fetch: Any, jp_base_url: str
) -> None:
    page = (await jp_fetch("appbook", "apps", "invoices")).body.decode()
    urls = [u for u in ASSET.findall(page) if not u.startswith("data:")]
    files = manifest()
    assert sorted(u.rsplit("/", 1)[-1] for u in urls) == sorted(
        files[name] for name in ("app.js", "style.css", "fontawesome-webfont.woff2")
    )
    # Nothing from elsewhere: no CDN, no MathJax, no Voilà front end.
    assert all(u.startswith(f"{jp_base_url}appbook/apps/static/") for u in urls), urls
    assert "://" not in page.split("<body", 1)[0]
    for url in urls:
        response = await jp_fetch(*local_parts(url, jp_base_url), headers={"Authorization": ""})
        assert response.code == 200  # public, as JupyterLab's own static files
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # The style sheet's only outside reference is the font, by its hashed name.
    css = (await jp_fetch("appbook", "apps", "static", files["style.css"])).body.decode()
    refs = {r for r in re.findall(r"url\(([^)]*)\)", css) if not r.startswith("data:")}
    assert refs == {f'"./{files["fontawesome-webfont.woff2"]}"'}


async def test_widget_libraries_are_versioned_and_only_their_bundles_served(
    apps_server: Any, jp_fetch: Any, jp_base_url: str
) -> None:
    page = (await jp_fetch("appbook", "apps", "invoices")).body.decode()
    modules = json.loads(CONFIG.search(page).group(1))["widgetModules"]  # type: ignore[union-attr]
    bqplot = modules["bqplot"]  # charts: loaded by the page only when it shows one
    path, _, version = bqplot.partition("?v=")
    assert path == f"{jp_base_url}appbook/apps/widgets/bqplot/index.js" and len(version) == 16
    parts = local_parts(path, jp_base_url)
    current = await jp_fetch(*parts, params={"v": version})
    assert current.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert current.body.startswith(b"/*") or b"define(" in current.body[:200]
    for params in ({}, {"v": "0" * 16}):  # no or an old version: revalidate
        response = await jp_fetch(*parts, params=params)
        assert response.headers["Cache-Control"] == "no-cache"
    for other in (("bqplot", "extension.js"), ("nope", "index.js"), ("..", "bqplot", "index.js")):
        response = await jp_fetch("appbook", "apps", "widgets", *other, raise_error=False)
        assert response.code == 404, other


async def test_voila_front_end_routes_are_not_served(apps_server: Any, jp_fetch: Any) -> None:
    for parts in (
        ("voila", "static", "voila.js"),
        ("voila", "templates", "lab", "static", "voila-style.js"),
        ("voila", "labextensions", "@jupyter-widgets", "jupyterlab-manager", "package.json"),
        ("voila", "render", "x.ipynb"),
        ("voila", "files", "x"),
    ):
        response = await jp_fetch(*parts, raise_error=False)
        assert response.code == 404, parts


async def test_a_closing_page_stops_its_app_kernel_and_no_other(
    apps_server: Any, jp_fetch: Any
) -> None:
    await jp_fetch("appbook", "apps", "invoices")
    (app_kernel,) = app_kernels(apps_server)
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    notebook_kernel = json.loads(response.body)["id"]
    refused = await jp_fetch(
        "voila", "api", "shutdown", notebook_kernel, method="POST", body=b"", raise_error=False
    )
    assert refused.code == 404
    done = await jp_fetch("voila", "api", "shutdown", app_kernel, method="POST", body=b"")
    assert done.code == 204
    assert apps_server.kernel_manager.list_kernel_ids() == [notebook_kernel]


def test_the_built_front_end_matches_its_sources() -> None:
    """template/static is built from frontend/ (`npm ci && npm run build`) and committed;
    the build records a hash of its sources, as build.mjs computes it."""
    front = Path(appbook_apps.__file__).parent / "frontend"
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json", "build.mjs"):
        digest.update((front / name).read_bytes())
    for name in ("index.js", "app.css", "sanitize-html.js"):
        digest.update((front / "src" / name).read_bytes())
    files = manifest()
    assert files["sources"] == digest.hexdigest(), "rebuild: cd frontend && npm ci && npm run build"
    built = {p.name for p in STATIC_DIR.iterdir()}
    assert built == {*(v for k, v in files.items() if k != "sources"), "manifest.json"}
