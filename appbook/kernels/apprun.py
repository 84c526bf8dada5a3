"""What the app notebook runs in a Voilà kernel: read the request, bind the user, show a page.

The server serves every component's pages through one packaged notebook
(``appbook/kernels/app.ipynb``), in three cells:

1. :func:`prepare`: imports and the data layer connection, the slow part.
2. :func:`shell`: the app's container, displayed. A kernel preheated for one app
   (``APPBOOK_PREHEAT_APP`` names it) renders that app's first page into it already, as
   nobody in particular, unless the page declares ``roles:`` (nobody may open it: it is
   built at request time, for the user); a kernel started for its request leaves it empty.
3. :func:`run`: waits for the request (:func:`wait_for_request`; a no-op in a kernel started
   for its request), then either binds the prerendered page to the signed-in user, when the
   request is for that page, or renders ``/appbook/apps/{component}?page=...&id=...`` into
   the container.

A preheated kernel runs cells 1 and 2 before any request, and Voilà serves their HTML
(widgets included) the moment a request arrives; only cell 3 runs after it.

The request arrives as CGI-style variables: ``SCRIPT_NAME`` (the path), ``QUERY_STRING``,
and ``HTTP_X_APPBOOK_USER``, which the server sets from the signed-in user (a value sent by
the browser is dropped first), so records are created and updated as that user.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

RUNS_APP = "_runs"  # the built-in app of workflow runs and approvals (no component's name)
APPS_PATH = "/appbook/apps/"
USER_VARIABLE = "HTTP_X_APPBOOK_USER"
PREHEAT_VARIABLE = "APPBOOK_PREHEAT_APP"
UNBOUND = "(not signed in yet)"  # the actor of a prerendered page until a request binds it
# Query parameters that are not page parameters (jupyter_server's token, Voilà's own).
RESERVED = {"token", "page", "template", "theme"}


@dataclass(frozen=True)
class AppRequest:
    """What the browser asked for."""

    component: str
    page: str | None
    params: dict[str, str] = field(default_factory=dict)
    user: str | None = None


def current_request(environ: Mapping[str, str] | None = None) -> AppRequest:
    """The request this kernel serves, from its environment."""
    env = os.environ if environ is None else environ
    path = env.get("SCRIPT_NAME", "")
    at = path.find(APPS_PATH)
    component = path[at + len(APPS_PATH) :].strip("/") if at >= 0 else ""
    query = dict(parse_qsl(env.get("QUERY_STRING", ""), keep_blank_values=False))
    params = {k: v for k, v in query.items() if k not in RESERVED}
    return AppRequest(component, query.get("page") or None, params, env.get(USER_VARIABLE) or None)


def prepare() -> None:
    """Import the UI and open the data layer before any request (preheated kernels run this
    ahead of time, so an app opens without paying for it)."""
    from . import ui  # noqa: F401  (ipywidgets and every control)
    from .client import connect

    connect().registry.all()


@dataclass
class _Shell:
    box: Any = None
    prerendered: AppRequest | None = None
    app: Any = None  # the engine view the prerendered page writes with (its actor is bound)


_shell = _Shell()


def shell() -> Any:
    """The app's container, with the preheated app's first page already in it if this kernel
    was preheated for one."""
    import ipywidgets as widgets

    from .client import connect

    _shell.box = widgets.Box(layout=widgets.Layout(display="block"))
    component = os.environ.get(PREHEAT_VARIABLE, "")
    if component and not _home_restricted(component):
        _shell.app = connect().as_user(UNBOUND)
        _shell.prerendered = AppRequest(component, None, {}, None)
        _shell.box.children = [render(_shell.prerendered, _shell.app)]
    return _shell.box


def run() -> Any:
    """Wait for the request, then show its page in the container (or a plain message saying
    what is wrong). Returns the container."""
    wait_for_request()
    request = current_request()
    box = _shell.box if _shell.box is not None else shell()
    pre = _shell.prerendered
    if (
        pre is not None
        and request.component == pre.component
        and not request.params
        and (request.page in (None, first_page(pre.component)))
    ):
        from .client import connect

        # The page was built ahead; from now on it writes as the signed-in user.
        _shell.app.actor = request.user or connect().actor
        for view in _shell.box.children:  # scripts' on_load and the maker's log, as them
            bound = getattr(view, "user_bound", None)
            if bound is not None:
                bound()
        return None
    for old in box.children:
        old.close()
    box.children = [render(request)]
    return None


def _home_restricted(component: str) -> bool:
    """Whether ``component``'s first page declares ``roles:``. Built ahead as nobody, it
    would be the refusal, shown until the request binds a user who may open it."""
    from .client import connect

    try:
        pages = connect()[component].definition.pages or {}
    except Exception:
        return False  # rendering it says what is wrong
    home = next(iter(pages.values()), None)
    return bool(home is not None and home.roles)


def first_page(component: str) -> str | None:
    """The first (home) page of ``component``, if it has pages."""
    from .client import connect

    try:
        pages = connect()[component].definition.pages or {}
    except Exception:
        return None
    return next(iter(pages), None)


def wait_for_request(timeout: float = 3600) -> None:
    """In a preheated kernel, block until the server hands it a request, then put the request
    into the environment; elsewhere (a kernel started for its request, a notebook) return.

    Voilà's own ``voila.utils.wait_for_request`` does the same over the same socket
    (``{VOILA_SERVER_URL}voila/query/{VOILA_KERNEL_ID}``), but importing it imports Voilà's
    server side: 2.5 s of every cold app start, measured. This one needs only the
    ``websockets`` client Voilà already depends on (0.09 s).
    """
    env = os.environ
    if env.get("VOILA_PREHEAT", "False") == "False":
        return
    from websockets.sync.client import connect

    host = env.get("VOILA_APP_IP", "127.0.0.1")
    port = env.get("VOILA_APP_PORT", "8866")
    base = env.get("VOILA_WS_BASE_URL") or env.get("VOILA_SERVER_URL", "/")
    url = f"{env.get('VOILA_WS_PROTOCOL', 'ws')}://{host}:{port}{base}voila/query/"
    with connect(url + env.get("VOILA_KERNEL_ID", ""), open_timeout=10) as socket:
        message = socket.recv(timeout=timeout)
    os.environ.update(json.loads(message))


def render(request: AppRequest, app: Any = None) -> Any:
    """The page widget for ``request`` (acting through ``app``, by default as the request's
    user), or an HTML message for a bad address."""
    import ipywidgets as widgets

    from ..server.errors import AppbookError
    from .client import connect
    from .ui import AppView

    app = app if app is not None else connect(actor=request.user)
    if request.component == RUNS_APP:
        from .ui import RunsView

        return RunsView(app)
    if not request.component:
        return _message("No app named", "Open an app from the <a href='../apps/'>app list</a>.")
    try:
        definition = app[request.component].definition
        pages = definition.pages or {}
        if not pages:
            return _message(
                f"{request.component} has no pages",
                "Declare pages in its definition to open it as an app.",
            )
        page = request.page or next(iter(pages))
        view: widgets.Widget = AppView(app, request.component, page, request.params)
    except AppbookError as exc:
        return _message("This app cannot open", html.escape(exc.message))
    except ValueError as exc:  # a parameter of the wrong type, e.g. ?id=abc
        return _message("This app cannot open", html.escape(f"bad address: {exc}"))
    return view


def _message(title: str, body_html: str) -> Any:
    import ipywidgets as widgets

    return widgets.HTML(
        f"<div class='appbook-message'><h2>{html.escape(title)}</h2><p>{body_html}</p></div>"
    )
