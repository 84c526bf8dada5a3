"""``health`` (liveness) and ``health/ready`` (dependencies reachable)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from tornado import web

from ..base import AppbookHandler
from ..models import Health
from ..openapi import operation


class HealthHandler(AppbookHandler):
    """The server answers."""

    @web.authenticated
    @operation("Liveness: the server answers", response=Health, errors=(403,), tags=("health",))
    async def get(self) -> None:
        """``{"status": "ok"}``."""
        self.reply({"status": "ok", "checks": {}})


class ReadyHandler(AppbookHandler):
    """The database (and Redis, when configured) answer; 503 otherwise."""

    @web.authenticated
    @operation(
        "Readiness: database and Redis reachable (503 when not)",
        response=Health,
        errors=(403,),
        tags=("health",),
    )
    async def get(self) -> None:
        """Each dependency's state, 503 if any is down."""
        checks = await self.run(_checks, self.settings["appbook_engine"])
        ok = all(v == "ok" for v in checks.values())
        self.reply({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)


def _checks(app: Any) -> dict[str, str]:
    checks = {}
    try:
        with app.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except sa.exc.SQLAlchemyError as exc:
        checks["database"] = (
            f"unreachable: {type(exc.orig if hasattr(exc, 'orig') else exc).__name__}"
        )
    if app.config.redis_url:
        import redis

        client = redis.Redis.from_url(
            app.config.redis_url, socket_connect_timeout=2, socket_timeout=2
        )
        try:
            client.ping()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        finally:
            client.close()
    return checks


routes = [
    (r"/appbook/api/health", HealthHandler),
    (r"/appbook/api/health/ready", ReadyHandler),
]
