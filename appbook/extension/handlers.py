"""REST handlers under ``/appbook/api/`` (health only until the REST issue)."""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web


class HealthHandler(APIHandler):
    """``GET /appbook/api/health``: the server is up."""

    @web.authenticated
    async def get(self) -> None:
        """Answer ``{"status": "ok"}``."""
        self.finish({"status": "ok"})


default_handlers: list[tuple[str, Any]] = [(r"/appbook/api/health", HealthHandler)]
