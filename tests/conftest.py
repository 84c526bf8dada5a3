"""Shared fixtures: a data layer on SQLite and on PostgreSQL, with every test isolated.

PostgreSQL tests get a fresh schema each (dropped afterwards) on the server at
127.0.0.1:5432; Redis tests use database 15 of 127.0.0.1:6379. When a service does not
answer the tests that need it are skipped, unless APPBOOK_TEST_REQUIRE_SERVICES=1 (CI), which
turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from appbook.kernels.client import disconnect_all
from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from tests.serving import service_missing

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PG_SERVER = os.environ.get(
    "APPBOOK_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("APPBOOK_TEST_REDIS", "redis://127.0.0.1:6379/15")
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def appbook_environment() -> Iterator[None]:
    """``APPBOOK_*`` variables as they were before each test: a test server exports its
    data layer into ``os.environ`` for its kernels, and a later test building its config
    from the environment would otherwise reach that test's (dropped) database."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("APPBOOK_")}
    try:
        yield
    finally:
        for name in [k for k in os.environ if k.startswith("APPBOOK_") and k not in saved]:
            del os.environ[name]
        os.environ.update(saved)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema."""
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_missing("PostgreSQL", exc.orig)
    sep = "&" if "?" in PG_SERVER else "?"
    try:
        yield f"{PG_SERVER}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    """Redis for tests (database 15), or skip/fail."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each data-layer test runs on the embedded SQLite default and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'appbook.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> EngineConfig:
    """Engine configuration rooted in the test's own folder."""
    return EngineConfig.from_values(
        home=str(tmp_path / "home"), database_url=database_url, redis_url=""
    )


@pytest.fixture
def app(config: EngineConfig) -> Iterator[Appbook]:
    """An engine on a fresh database, closed after the test."""
    engine = Appbook(config, actor="tester")
    try:
        yield engine
    finally:
        engine.close()
        disconnect_all()


@pytest.fixture
def published(app: Appbook) -> Appbook:
    """An engine with the all-field-types fixture components published."""
    app.publish(FIXTURES / "all_types")
    return app
