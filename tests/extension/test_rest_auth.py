"""Every route needs authentication, answers JSON errors, and never blocks the event loop."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from appbook.extension.app import AppbookApp
from appbook.extension.handlers import routes
from appbook.extension.openapi import METHODS, described, path_template

Api = Any


def concrete(template: str) -> str:
    """A URL for a template, with plausible values in its placeholders."""
    values = {"name": "items", "record_id": "1", "number": "1", "file_id": "0" * 32}
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), "x"), template).removeprefix(
        "/appbook/api/"
    )


def route_methods() -> list[tuple[str, str]]:
    out = []
    for pattern, handler in routes:
        template, _ = path_template(pattern)
        for method in METHODS:
            if described(handler, method):
                out.append((method.upper(), concrete(template)))
    return out


def test_every_route_method_is_described_for_openapi() -> None:
    for pattern, handler in routes:
        for method in METHODS:
            fn = getattr(handler, method)
            if fn.__qualname__.startswith("RequestHandler."):
                continue  # not implemented: tornado answers 405
            assert described(handler, method) is not None, f"{method} {pattern} has no @operation"


def test_no_route_lacks_an_authentication_decorator(jp_serverapp: Any) -> None:
    missing = [
        m
        for pattern, handler in routes
        for m in jp_serverapp.web_app._check_handler_auth(pattern, handler)
    ]
    assert missing == []
    assert "appbook_engine" in jp_serverapp.web_app.settings  # the extension loaded


async def test_every_route_refuses_requests_without_a_token(
    published_api: Api, jp_fetch: Any
) -> None:
    checked = 0
    for method, path in route_methods():
        body = b"{}" if method in ("POST", "PATCH", "PUT") else None
        response = await jp_fetch(
            *["appbook", "api", *path.split("/")],
            method=method,
            body=body,
            headers={"Authorization": ""},
            raise_error=False,
            follow_redirects=False,
        )
        assert response.code in (401, 403), f"{method} {path} answered {response.code}"
        assert response.headers["Content-Type"].startswith("application/json"), (
            f"{method} {path} is not JSON"
        )
        assert json.loads(response.body)["error"]["code"] in ("forbidden", "unauthenticated")
        checked += 1
    assert checked >= 10


async def test_a_slow_query_does_not_delay_health(
    published_api: Api, jp_serverapp: Any, database_url: str
) -> None:
    """Hold the table locked from another connection: the create waits, health does not."""
    engine = jp_serverapp.web_app.settings["appbook_engine"].engine
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with engine.connect() as conn, conn.begin():  # BEGIN IMMEDIATE on SQLite
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("LOCK TABLE items IN ACCESS EXCLUSIVE MODE"))
            else:
                conn.execute(sa.text("UPDATE items SET qty = qty WHERE 0"))
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert await asyncio.get_running_loop().run_in_executor(None, locked.wait, 10)
        create = asyncio.ensure_future(
            published_api("POST", "components/items/records", json_body={"code": "SLOW"})
        )
        health = await published_api("GET", "health")
        assert health.code == 200
        assert not create.done()  # the create is still waiting on the lock
    finally:
        release.set()
        await asyncio.get_running_loop().run_in_executor(None, holder.join, 30)
    assert (await create).code == 201


def test_settings_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Command line > config file > APPBOOK_* variable > default."""
    monkeypatch.setenv("APPBOOK_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("APPBOOK_MAX_BODY_SIZE", "1234")
    app = AppbookApp()
    assert app.engine_config().database_url == "sqlite:///from-env.db"
    assert app.max_body_size == 1234
    from traitlets.config import Config

    app = AppbookApp(config=Config({"AppbookApp": {"database_url": "sqlite:///from-config.db"}}))
    assert app.engine_config().database_url == "sqlite:///from-config.db"
    app.parse_command_line(["--AppbookApp.database_url=sqlite:///from-cli.db"])
    assert app.engine_config().database_url == "sqlite:///from-cli.db"
