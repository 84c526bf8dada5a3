"""What an app page loads besides itself, and the one Voilà route it calls.

An app page (``template/index.html.j2``) loads Appbook's own front end: one script, one
style sheet and one font from ``/appbook/apps/static/``, whose names carry their content
hash (the build writes ``manifest.json``), so browsers keep them for a year without asking
again (``immutable``). A page with a third-party widget library (bqplot's charts) loads
that library's AMD bundle from ``/appbook/apps/widgets/{module}/index.js?v={hash}``, only
when one of its widgets is shown. Nothing comes from outside the server.

The page asks ``/voila/api/shutdown/{kernel}`` to stop its kernel when the tab closes (the
address Voilà's own pages use). Voilà's server extension would also serve any notebook
under the server's root, files without authentication and its whole JupyterLab front end;
Appbook registers none of that, and the shutdown only stops app kernels.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from jupyter_core.paths import jupyter_path
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

TEMPLATE_DIR = Path(__file__).parent / "template"
"""The app page's Voilà template, its error page and its built front end (``static/``)."""
STATIC_DIR = TEMPLATE_DIR / "static"
YEAR = 365 * 24 * 3600
IMMUTABLE = f"public, max-age={YEAR}, immutable"


@cache
def manifest() -> dict[str, str]:
    """The built front end: ``{"app.js": "app-<hash>.js", "style.css": ..., "sources": ...}``."""
    return dict(json.loads((STATIC_DIR / "manifest.json").read_text()))


class WidgetModule(NamedTuple):
    """A third-party widget library's AMD bundle and the hash of its bytes."""

    path: Path
    version: str


def widget_modules() -> dict[str, WidgetModule]:
    """Third-party widget libraries with an AMD bundle (``nbextensions/{module}/index.js``),
    the first found on Jupyter's data path for each, as ipywidgets' HTML manager loads them."""
    found: dict[str, WidgetModule] = {}
    for root in jupyter_path("nbextensions"):
        if not os.path.isdir(root):
            continue
        for name in sorted(os.listdir(root)):
            bundle = Path(root) / name / "index.js"
            if name not in found and bundle.is_file():
                found[name] = WidgetModule(bundle, content_hash(bundle))
    return found


def content_hash(path: Path) -> str:
    """A short hash of a file's bytes, for the ``v`` query of its address."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def page_assets(base_url: str, modules: dict[str, WidgetModule]) -> dict[str, Any]:
    """What the template links to (``page_config.appbook``)."""
    files = manifest()
    static = f"{base_url}appbook/apps/static/"
    return {
        "js": static + files["app.js"],
        "css": static + files["style.css"],
        "font": static + files["fontawesome-webfont.woff2"],
        "widget_modules": {
            name: f"{base_url}appbook/apps/widgets/{name}/index.js?v={module.version}"
            for name, module in modules.items()
        },
    }


class PublicAssets(web.StaticFileHandler):
    """Static files anyone may fetch (as JupyterLab's own), marked so for jupyter_server."""

    @allow_unauthenticated
    def get(self, path: str, include_body: bool = True) -> Any:
        """Serve one asset."""
        return super().get(path, include_body)

    @allow_unauthenticated
    def head(self, path: str) -> Any:
        """Headers of one asset."""
        return super().head(path)


class FrontEndAssets(PublicAssets):
    """``/appbook/apps/static/{name}``: the built front end. Every name carries its content
    hash, so each address always means the same bytes: cached for a year, immutable."""

    def set_extra_headers(self, path: str) -> None:
        """Cache for good (tornado's own rule would only do so with a ``v`` query)."""
        self.set_header("Cache-Control", IMMUTABLE)

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        """A year (also sets ``Expires``)."""
        return YEAR


class WidgetModuleAssets(PublicAssets):
    """``/appbook/apps/widgets/{module}/index.js``: one widget library's AMD bundle. With
    the ``v`` query the page puts on it (its current hash), cached for good; otherwise
    revalidated each time."""

    def initialize(self, modules: dict[str, WidgetModule]) -> None:  # type: ignore[override]
        """``modules``: :func:`widget_modules`."""
        self.modules = modules
        super().initialize(path="/")

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        """The bundle's real path is looked up in :meth:`validate_absolute_path`."""
        return path

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        """Only ``{module}/index.js`` of a known module; anything else is 404."""
        name, _, rest = absolute_path.partition("/")
        module = self.modules.get(name)
        if module is None or rest != "index.js":
            raise web.HTTPError(404)
        self.module = module
        return str(module.path)

    def set_extra_headers(self, path: str) -> None:
        """The current version: immutable; anything else: ask again each time (ETag)."""
        current = self.get_argument("v", "") == self.module.version
        self.set_header("Cache-Control", IMMUTABLE if current else "no-cache")

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        """A year for the current version (also sets ``Expires``), else none."""
        return YEAR if self.get_argument("v", "") == self.module.version else 0


class AppKernelShutdown(APIHandler):
    """``POST /voila/api/shutdown/{kernel}``: the page closing stops its app kernel; other
    kernels are not an app page's to stop."""

    auth_resource = "appbook"

    @web.authenticated
    @authorized
    async def post(self, kernel_id: str) -> None:
        """204 after shutting the app kernel down; 404 for any other kernel."""
        km = self.kernel_manager
        try:
            is_app = bool(getattr(km.get_kernel(kernel_id), "appbook_app", False))
        except KeyError:
            is_app = False
        if not is_app:
            raise web.HTTPError(404, f"no app kernel {kernel_id}")
        await ensure_async(km.shutdown_kernel(kernel_id))  # type: ignore[no-untyped-call]
        self.set_status(204)
        self.finish()


def asset_routes(modules: dict[str, WidgetModule]) -> list[tuple[Any, ...]]:
    """The routes an app page loads and calls (ExtensionApp adds the base URL)."""
    return [
        (r"/appbook/apps/static/(.*)", FrontEndAssets, {"path": str(STATIC_DIR)}),
        (r"/appbook/apps/widgets/(.*)", WidgetModuleAssets, {"modules": modules}),
        (r"/voila/api/shutdown/(.*)", AppKernelShutdown),
    ]
