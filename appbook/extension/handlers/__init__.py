"""The REST API under ``/appbook/api/``: each module ends with its URL table."""

from __future__ import annotations

from typing import Any

from tornado import web

from ...server.errors import NotFound
from ..base import AppbookHandler
from . import (
    components,
    dataflows,
    events,
    files,
    health,
    hooks,
    openapi,
    records,
    run_notebooks,
    workflows,
)

routes: list[tuple[str, Any]] = [
    *health.routes,
    *components.routes,
    *records.routes,
    *files.routes,
    *events.routes,
    *workflows.routes,
    *dataflows.routes,
    *run_notebooks.routes,
    *hooks.routes,
    *openapi.routes,
]


class UnknownPathHandler(AppbookHandler):
    """Any other path under /appbook/api/: a JSON 404, never Jupyter's HTML page."""

    @web.authenticated
    async def get(self, path: str) -> None:
        """404 naming the path."""
        raise NotFound(f"no API route /appbook/api/{path} (see /appbook/api/openapi.json)")

    post = patch = put = delete = get


# Registered after every route, kept out of the OpenAPI document.
fallback: list[tuple[str, Any]] = [(r"/appbook/api/(?P<path>.*)", UnknownPathHandler)]
