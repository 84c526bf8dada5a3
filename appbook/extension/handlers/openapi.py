"""``openapi.json``: the OpenAPI 3.1 document of this API, built from the handlers."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ... import __version__
from ...server.record_schema import record_schema
from ..base import AppbookHandler
from ..openapi import build, operation


class OpenAPIHandler(AppbookHandler):
    """The API's own description, with the record schema of every published component."""

    @web.authenticated
    @authorized
    @operation("This OpenAPI document", response={"type": "object"}, errors=(403,), tags=("meta",))
    async def get(self) -> None:
        """OpenAPI 3.1."""
        from . import routes

        comps = await self.run(self.engine.registry.all)
        extra: dict[str, Any] = {
            f"Record_{n}": record_schema(c.definition) for n, c in comps.items()
        }
        self.reply(build(routes, title="Appbook API", version=__version__, extra_schemas=extra))


routes = [(r"/appbook/api/openapi.json", OpenAPIHandler)]
