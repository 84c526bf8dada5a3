"""The peers bench/rest.py compares the REST API with, each answering one constant JSON body.

* As a jupyter_server extension (``PYTHONPATH=bench``, ``--ServerApp.jpserver_extensions``):
  ``GET /bench/constant``, an authenticated ``APIHandler``: what any jupyter_server API
  request costs before Appbook does anything.
* As a script (``python bench/_rest_peers.py PORT``): a plain tornado application with the
  same handler and no authentication, the floor under both.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

# About the size of one benchmark record as the API returns it.
BODY = (
    b'{"id": 1, "number": "INV-000001", "title": "Paper and toner for the second floor", '
    b'"amount": 1234.5, "due_date": "2026-11-25T00:00:00+00:00", "status": 0, '
    b'"created_at": "2026-11-25T10:00:00+00:00", "created_by": "bench", '
    b'"updated_at": "2026-11-25T10:00:00+00:00", "updated_by": "bench", "version": 1}'
)
PATH = "/bench/constant"


class ConstantHandler(APIHandler):
    """jupyter_server's API handler, authenticated, answering the constant."""

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(BODY)


class PlainHandler(web.RequestHandler):
    """A plain tornado handler answering the constant."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(BODY)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "_rest_peers"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base_url = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base_url, PATH), ConstantHandler)])


async def serve_plain(port: int) -> None:
    """Serve :class:`PlainHandler` on 127.0.0.1:``port`` until interrupted."""
    web.Application([(PATH, PlainHandler)]).listen(port, "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_plain(int(sys.argv[1])))
