"""``appbook worker`` refusing to start, run as a user runs it (a subprocess). Workers that
do start, and what they do, are in tests/server/test_celery.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.celery_procs import free_port
from tests.test_cli import appbook


def test_worker_needs_a_redis_url_and_writes_nothing(tmp_path: Path) -> None:
    proc = appbook(tmp_path, "worker", check=False)
    assert proc.returncode == 1
    assert "the Celery executor needs Redis: set APPBOOK_REDIS_URL" in proc.stderr
    assert not (tmp_path / "home").exists()  # no database made


def test_worker_names_a_redis_that_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://:secret@127.0.0.1:{port}/0"
    proc = appbook(tmp_path, "worker", "--redis-url", url, check=False)
    assert proc.returncode == 1
    assert f"Redis at redis://127.0.0.1:{port}/0 does not answer" in proc.stderr
    assert "secret" not in proc.stderr + proc.stdout
    assert not (tmp_path / "home").exists()


def test_worker_names_a_malformed_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPBOOK_CELERY_VISIBILITY_TIMEOUT", "two hours")
    proc = appbook(tmp_path, "worker", "--redis-url", "redis://127.0.0.1:1/0", check=False)
    assert proc.returncode == 1
    assert (
        "$APPBOOK_CELERY_VISIBILITY_TIMEOUT: expected a number of seconds, got 'two hours'"
        in proc.stderr
    )
    assert not (tmp_path / "home").exists()
