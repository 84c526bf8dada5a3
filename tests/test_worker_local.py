"""``appbook worker --local``: worker processes outside the server take queued runs, and
stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from tests.server.test_local_executor import TASKS, wait_until

pytestmark = pytest.mark.slow


def test_worker_local_advances_runs_and_stops_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "tasks.component.yaml").write_text(TASKS)
    config = EngineConfig.from_values(home=str(home), redis_url="")
    env = {**os.environ, **config.environment(), "APPBOOK_WORKER_POLL": "0.1"}
    env.pop("APPBOOK_REDIS_URL", None)
    with Appbook(config, actor="tester") as app:
        app.publish(tmp_path / "defs")
        record = app["tasks"].create({"title": "t", "size": 50})
        run = app.runs.start("tasks", "triage", record_id=record["id"])
        worker = subprocess.Popen(
            [sys.executable, "-m", "appbook", "worker", "--local", "--concurrency", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: app.runs.get(int(run["id"]))["status"] == "succeeded", what="run")
            assert app["tasks"].get(record["id"])["state"] == "large"
        finally:
            worker.send_signal(signal.SIGTERM)
            out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, out.decode()
    assert b"1 processes on <Appbook sqlite:///" in out and b"stopping" in out


def test_worker_local_names_an_unreachable_database(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"
    result = subprocess.run(
        [sys.executable, "-m", "appbook", "worker", "--local", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "error:" in result.stderr and "secret" not in result.stderr
