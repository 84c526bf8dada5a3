"""``AppbookApp``: the jupyter_server ExtensionApp that hosts the engine.

It builds the engine in ``initialize_settings``, exports the data-layer location to the
environment so every kernel the server starts reaches the same data with
``appbook.connect()``, and closes the engine in ``stop_extension``.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.extension.application import ExtensionApp

from ..server.config import EngineConfig
from ..server.engine import Appbook
from .handlers import default_handlers


class AppbookApp(ExtensionApp):
    """Appbook inside jupyter_server (also started by ``appbook serve``)."""

    name = "appbook"
    description = "Appbook: a low-code application platform inside Jupyter"
    extension_url = "/lab"
    load_other_extensions = True
    # `appbook serve` is JupyterLab with Appbook: makers work in the lab.
    serverapp_config = {"jpserver_extensions": {"jupyterlab": True}}

    engine: Appbook | None = None

    def initialize_settings(self) -> None:
        """Open the data layer and make it visible to kernels."""
        config = EngineConfig(parent=self)
        self.engine = Appbook(config)
        # Kernels inherit the server's environment (jupyter_client copies os.environ).
        os.environ.update(config.environment())
        self.settings["appbook"] = self.engine
        self.log.info("Appbook data layer: %s", self.engine)

    def initialize_handlers(self) -> None:
        """Register the REST routes under /appbook/api/."""
        self.handlers.extend(default_handlers)

    async def stop_extension(self) -> None:
        """Close the engine (event bus threads, database pool)."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    @classmethod
    def get_extension_package(cls) -> str:
        """The importable name holding ``_jupyter_server_extension_points``."""
        return "appbook.extension"

    def _config_file_name_default(self) -> str:
        return "jupyter_appbook_config"

    @classmethod
    def serve(cls, argv: list[str], **kwargs: Any) -> None:
        """Start a server with JupyterLab and this extension (the ``appbook serve`` command)."""
        cls.launch_instance(argv=argv, **kwargs)  # type: ignore[no-untyped-call]
