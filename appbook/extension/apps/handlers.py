"""``/appbook/apps/``: the app index, and each component's pages served by Voilà.

Every app is the same packaged notebook (``appbook/kernels/app.ipynb``) rendered by Voilà's
own handler; the kernel reads which component, page and record from the request (see
:mod:`appbook.kernels.apprun`). The handler adds what a server extension needs on top of
Voilà: Appbook's authorization, a page's ``roles:`` checked before any kernel is used (a 403
page; the index lists only the pages that open, see :mod:`appbook.server.access`), the
signed-in user passed to the kernel, a notebook outside the server's root (a contents
manager of its own), and preheated kernels (:mod:`.kernels`).
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from voila.handler import VoilaHandler
from voila.request_info_handler import RequestInfoSocketHandler

from ...kernels.apprun import RUNS_APP
from ...server import access
from ...server.engine import Appbook
from ...server.errors import NotFound
from ...server.registry import Component
from ..base import actor_name
from .kernels import requested_app

USER_HEADER = "X-Appbook-User"
COMPONENT = r"(?P<component>[a-z][a-z0-9_]*|_runs)"  # a component, or the runs app
LOOPBACK = ("127.0.0.1", "::1")


class AppHandler(VoilaHandler):  # type: ignore[misc]
    """One component's app: ``/appbook/apps/{component}?page=...&id=...``."""

    auth_resource = "appbook"

    @property
    def contents_manager(self) -> Any:
        """Reads the packaged app notebook, wherever the server's root is."""
        return self.settings["appbook_app_contents"]

    @property
    def kernel_manager(self) -> Any:
        """The server's kernels plus the preheated pool (:class:`AppKernels`)."""
        return self.settings["appbook_app_kernels"]

    @web.authenticated
    @authorized
    async def get(self, component: str) -> None:
        """Stream the rendered page while its kernel runs."""
        engine: Appbook = self.settings["appbook_engine"]
        loop = asyncio.get_running_loop()
        pool = self.settings["appbook_executor"]
        found: Component | None = None
        try:
            if component != RUNS_APP:
                found = engine.registry.cached(component)
                if found is None:
                    found = await loop.run_in_executor(pool, engine.registry.get, component)
        except NotFound as exc:
            raise web.HTTPError(404, exc.message, reason=f"No app {component!r}") from None
        user = actor_name(self.current_user, engine)
        refused = None if found is None else await self._refusal(engine, found, user)
        if refused is not None:  # no kernel is started or taken from the pool for it
            self.set_status(403)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(refused_html(self.base_url, refused))
            return
        # The kernel acts as the signed-in user: the server sets this header (Voilà passes
        # it to the kernel as HTTP_X_APPBOOK_USER); one sent by the browser is dropped.
        self.request.headers.pop(USER_HEADER, None)
        self.request.headers[USER_HEADER] = user
        requested_app.set(component)  # which app's preheated kernels may serve it
        # The page's POST when it closes (stop my kernel) must carry the _xsrf cookie's
        # value; reading the token sets the cookie.
        self.xsrf_token  # noqa: B018
        async for chunk in self.get_generator(path=None):
            self.write(chunk)
            await self.flush()

    async def _refusal(self, engine: Appbook, component: Component, user: str) -> str | None:
        """Why ``user`` may not open the requested page (``?page=``, else the app's first
        page), or None. An unknown page is left to the kernel, which says so in the page."""
        pages = component.definition.pages or {}
        name = self.get_argument("page", "") or next(iter(pages), "")
        page = pages.get(name)
        if page is None or not page.roles:
            return None  # the common case reads no users table
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.settings["appbook_executor"], access.check, engine.users, user, name, page
        )


class AppIndexHandler(JupyterHandler):
    """``/appbook/apps/``: the published components that have pages, with links."""

    auth_resource = "appbook"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """An HTML list of apps and their pages."""
        engine: Appbook = self.settings["appbook_engine"]
        loop = asyncio.get_running_loop()
        pool = self.settings["appbook_executor"]
        components = await loop.run_in_executor(pool, engine.registry.all)
        user = actor_name(self.current_user, engine)
        viewer = await loop.run_in_executor(pool, access.viewer, engine.users, user)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(index_html(self.base_url, components, viewer))


def index_html(
    base_url: str, components: dict[str, Any], viewer: access.Viewer | None = None
) -> str:
    """The app index page: the pages ``viewer`` may open (every page for a maker, or when
    no viewer is given), and only the apps with one of them."""
    who = viewer or access.Viewer("", (), True)
    rows = []
    for name, comp in sorted(components.items()):
        pages = comp.definition.pages or {}
        href = f"{base_url}appbook/apps/{name}"
        opens = [p for p, page in pages.items() if access.may_open(page, who.roles, who.is_maker)]
        # Dialogs open over another page, and pages that take parameters (a record id)
        # are reached from the app itself.
        listed = [p for p in opens if not pages[p].dialog and not pages[p].params]
        if not pages or not (listed or next(iter(pages)) in opens):
            continue
        links = " · ".join(
            f"<a href='{href}?page={html.escape(p)}'>{html.escape(pages[p].title or p)}</a>"
            for p in listed
        )
        # The app's own link opens its first page, or the first one this user may open.
        home = href if next(iter(pages)) in opens else f"{href}?page={html.escape(listed[0])}"
        title = html.escape(comp.definition.title or name)
        rows.append(f"<li><a class='app' href='{home}'>{title}</a> <span>({links})</span></li>")
    body = "".join(rows) or "<li>No app yet: publish a component with pages.</li>"
    runs = f"{base_url}appbook/apps/{RUNS_APP}"
    body += f"<li><a class='app' href='{runs}'>Workflow runs</a> <span>(and approvals)</span></li>"
    return _html_page("Appbook apps", f"<h1>Apps</h1><ul>{body}</ul>")


def refused_html(base_url: str, message: str) -> str:
    """The 403 page of an app page the user may not open: the message, a way back."""
    index = f"{base_url}appbook/apps/"
    return _html_page(
        "Not allowed",
        f"<h1>Not allowed</h1><p class='appbook-refused'>{html.escape(message)}.</p>"
        f"<p><a href='{index}'>Back to the apps</a></p>",
    )


def _html_page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}li{margin:.4rem 0}"
        "span{color:#666}</style></head>"
        f"<body>{body}</body></html>"
    )


class AppRequestInfoHandler(RequestInfoSocketHandler):  # type: ignore[misc]
    """Voilà's request hand-over to preheated kernels (``/voila/query/{kernel_id}``),
    restricted to app kernels connecting from this machine: the request it carries
    (including the signed-in user) is no one else's business."""

    @allow_unauthenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        """The WebSocket upgrade. The kernel has no credentials: :meth:`open` admits only
        local connections for live app kernels instead."""
        await super().get(*args, **kwargs)

    def open(self, kernel_id: str) -> None:
        """Accept only a local connection for a live app kernel."""
        kernels = self.settings["appbook_app_kernels"]
        try:
            is_app = bool(getattr(kernels.get_kernel(kernel_id), "appbook_app", False))
        except KeyError:
            is_app = False
        if self.request.remote_ip not in LOOPBACK or not is_app:
            self.close(code=1008, reason="not an app kernel")
            return
        super().open(kernel_id)

    def on_close(self) -> None:
        """Forget this connection (if it was accepted)."""
        if self in RequestInfoSocketHandler._waiters.values():
            super().on_close()
