"""Apps: component pages served as Voilà apps inside the same server (see :mod:`.handlers`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from jupyter_server.services.contents.filemanager import FileContentsManager
from voila.configuration import VoilaConfiguration
from voila.paths import collect_template_paths

import appbook.kernels as kernel_side

from .assets import TEMPLATE_DIR, asset_routes, page_assets, widget_modules
from .guard import guarded
from .handlers import COMPONENT, USER_HEADER, AppHandler, AppIndexHandler, AppRequestInfoHandler
from .kernels import AppKernels

APP_NOTEBOOK = "app.ipynb"
APP_DIR = Path(kernel_side.__file__).parent  # appbook/kernels/app.ipynb


def setup_apps(serverapp: Any, settings: dict[str, Any], pool_size: int) -> list[Any]:
    """Put what the app handlers need into ``settings``; return their routes."""
    voila = VoilaConfiguration(parent=serverapp)
    voila.http_header_envs = [*voila.http_header_envs, USER_HEADER]
    # An app is what its definition says: no ?template= or ?theme= from the address bar.
    voila.allow_template_override = "NO"
    voila.allow_theme_override = "NO"
    # Appbook's page template comes first: it replaces the lab template's index.html.j2
    # (and Voilà's error page) and keeps nbconvert's cell and output blocks under it.
    template_paths = [
        str(TEMPLATE_DIR),
        *collect_template_paths(["voila", "nbconvert"], voila.template),
    ]
    modules = widget_modules()
    assets = page_assets(serverapp.base_url, modules)

    def app_page_config(page_config: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**page_config, "appbook": assets}

    # A cold request's page gets the asset addresses here; preheated ones in AppKernels.
    voila.page_config_hook = app_page_config
    # Voilà's error pages need its Jinja environment; its own extension sets the same one.
    if "voila_jinja2_env" not in settings:
        env = Environment(
            loader=FileSystemLoader(template_paths), extensions=["jinja2.ext.i18n"], autoescape=True
        )
        env.install_null_translations(newstyle=False)  # type: ignore[attr-defined]
        settings["voila_jinja2_env"] = env
    # No parent: the server's contents configuration (its root) is not the app notebook's.
    # Synchronous: reading one small packaged file needs no worker threads, and the async
    # manager's (AnyIO's) outlive a server stopped by a signal and keep the process alive.
    contents = FileContentsManager(root_dir=str(APP_DIR), log=serverapp.log)
    app_kernels = AppKernels(
        serverapp, voila, template_paths, contents, pool_size=pool_size, page_assets=assets
    )
    web_settings = serverapp.web_app.settings
    base = web_settings.get("kernel_websocket_connection_class") or (
        serverapp.kernel_websocket_connection_class
    )
    settings.update(
        appbook_app_contents=contents,
        appbook_app_kernels=app_kernels,
        kernel_websocket_connection_class=guarded(base),
    )
    handler_args = {
        "notebook_path": APP_NOTEBOOK,
        "template_paths": template_paths,
        "config": serverapp.config,
        "voila_configuration": voila,
    }
    # ExtensionApp prefixes these with the server's base URL.
    return [
        (r"/appbook/apps/?", AppIndexHandler),
        (rf"/appbook/apps/{COMPONENT}/?", AppHandler, handler_args),
        (r"/voila/query/(?P<kernel_id>[\w-]+)", AppRequestInfoHandler),
        *asset_routes(modules),
    ]


__all__ = ["APP_NOTEBOOK", "AppKernels", "setup_apps"]
