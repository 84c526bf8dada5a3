"""``appbook.connect()``: the data layer from inside any kernel, worker or script.

The server sets ``APPBOOK_DATABASE_URL``, ``APPBOOK_REDIS_URL`` and ``APPBOOK_HOME`` in the
environment of every kernel it starts, so ``connect()`` with no arguments reaches the same
database, files and events as the server. Outside a server it uses the embedded default
(``.appbook/`` in the working directory). The engine runs in-process: no HTTP hop.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..server.engine import Appbook

_lock = threading.Lock()
_connections: dict[tuple[str, str, str, str], Appbook] = {}


def connect(
    database_url: str | None = None,
    *,
    home: str | None = None,
    redis_url: str | None = None,
    actor: str | None = None,
) -> Appbook:
    """The data layer named by the arguments, else by ``APPBOOK_*`` variables, else embedded.

    Connections are shared per process: calling ``connect()`` again is cheap. In a kernel
    that runs a workflow step, the default ``actor`` is the user who started the run.
    """
    from ..server.config import EngineConfig
    from ..server.engine import Appbook
    from .workflow import current_actor

    actor = actor if actor is not None else current_actor()

    config = EngineConfig.from_values(home=home, database_url=database_url, redis_url=redis_url)
    key = (config.database_url, config.redis_url, config.files_url, config.key_file)
    with _lock:
        app = _connections.get(key)
        if app is None:
            app = _connections[key] = Appbook(config)
    return app if actor is None else app.as_user(actor)


def disconnect_all() -> None:
    """Close every shared connection (tests and shutdown hooks)."""
    with _lock:
        apps = list(_connections.values())
        _connections.clear()
    for app in apps:
        app.close()
