"""The part of Voilà's server extension an app page needs, and nothing more.

A rendered app loads Voilà's scripts, templates, themes and lab extensions from fixed
``/voila/...`` addresses, and asks ``/voila/api/shutdown/{kernel}`` to stop its kernel when
the tab closes. Voilà's own server extension also serves any notebook under the server's
root (``/voila/render``, ``/voila/tree``), files from it without authentication
(``/voila/files``), and shuts down any kernel by id. Appbook registers only the routes apps
need: static assets (public, like JupyterLab's own static files, and marked so), themes and
lab extensions (authenticated, as in Voilà), and a shutdown that only stops app kernels.
``appbook serve`` turns Voilà's extension off; ``jupyter lab`` users who enable it keep it.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.handlers import APIHandler, FileFindHandler
from jupyterlab_server.themes_handler import ThemesHandler
from tornado import web
from voila.configuration import VoilaConfiguration
from voila.paths import collect_static_paths
from voila.static_file_handler import MultiStaticFileHandler, TemplateStaticFileHandler
from voila.utils import get_data_dir, get_voila_labextensions_path


class PublicAssets:
    """Static files anyone may fetch (as JupyterLab's own), marked so for jupyter_server."""

    @allow_unauthenticated
    def get(self, path: str, include_body: bool = True) -> Any:
        """Serve one asset."""
        return super().get(path, include_body)  # type: ignore[misc]

    @allow_unauthenticated
    def head(self, path: str) -> Any:
        """Headers of one asset."""
        return super().head(path)  # type: ignore[misc]


class TemplateAssets(PublicAssets, TemplateStaticFileHandler):  # type: ignore[misc]
    """Voilà's template CSS and scripts."""


class StaticAssets(PublicAssets, MultiStaticFileHandler):  # type: ignore[misc]
    """Voilà's front-end bundle."""


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


def asset_routes(voila: VoilaConfiguration) -> list[tuple[Any, ...]]:
    """The ``/voila/...`` routes an app page loads (ExtensionApp adds the base URL)."""
    labextensions = get_voila_labextensions_path(voila.extra_labextensions_path)
    return [
        (r"/voila/templates/(.*)", TemplateAssets),
        (
            r"/voila/static/(.*)",
            StaticAssets,
            {"paths": collect_static_paths(["voila", "nbconvert"], voila.template)},
        ),
        (
            r"/voila/api/themes/(.*)",
            ThemesHandler,
            {
                "themes_url": "/voila/api/themes",
                "path": os.path.join(get_data_dir(), "themes"),
                "labextensions_path": labextensions,
                "no_cache_paths": ["/"],
            },
        ),
        (r"/voila/api/shutdown/(.*)", AppKernelShutdown),
        (
            r"/voila/labextensions/(.*)",
            FileFindHandler,
            {"path": labextensions, "no_cache_paths": ["/"]},
        ),
    ]
