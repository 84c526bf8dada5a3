"""Faults on the local executor with real notebook steps: a worker process SIGKILLed in the
middle of a notebook step, and the whole `appbook worker --local` killed, repeatedly. Every
run still finishes, each step's side effect (a record keyed by the idempotency key) happens
exactly once, and nothing stays running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.workflows.executor import LocalExecutor
from tests.server.test_local_executor import wait_until

pytestmark = pytest.mark.slow

JOBS = """\
name: jobs
fields:
  title: {type: string}
  done: {type: boolean, default: false}
workflows:
  effect:
    stages:
      - name: only
        steps:
          - name: write
            notebook: write.ipynb
            retries: {count: 3, backoff: 0s}
            timeout: 2m
          - {name: mark, update_field: {field: done, value: true}}
"""
EFFECTS = """\
name: effects
fields:
  key: {type: string, unique: true, required: true}
  run: {type: integer}
"""
# The side effect, keyed by the idempotency key; the first time it is made the notebook
# dawdles, so the test can kill its worker mid-step (after the effect, before the step ends).
CELL = """\
import time
import appbook
from appbook.kernels.workflow import context, output

ctx = context()
effects = appbook.connect()["effects"]
if not effects.count(where={"key": ctx["idempotency_key"]}):
    effects.create({"key": ctx["idempotency_key"], "run": ctx["run_id"]})
    time.sleep(30)
output("attempt", ctx["attempt"])
"""


def notebook(source: str) -> str:
    cell = {
        "id": "effect",
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": source,
    }
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return json.dumps(
        {"cells": [cell], "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    )


@pytest.fixture
def jobs(app: Appbook, tmp_path: Path) -> Appbook:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "jobs.component.yaml").write_text(JOBS)
    (folder / "effects.component.yaml").write_text(EFFECTS)
    (folder / "write.ipynb").write_text(notebook(CELL))
    app.publish(folder)
    return app


def effect_made(app: Appbook, run_id: int) -> bool:
    return bool(app["effects"].count(where={"run": run_id}))


def holder_pid(app: Appbook, run_id: int) -> int | None:
    """The pid of the worker process holding the run (lease owners are kind@host:pid:…)."""
    owner = app.runs.get(run_id)["lease_owner"]
    return int(owner.split(":")[1]) if owner else None


def check_exactly_once(app: Appbook, ids: list[int]) -> list[dict[str, Any]]:
    runs = [app.runs.get(i) for i in ids]
    assert [r["status"] for r in runs] == ["succeeded"] * len(ids), [r["error"] for r in runs]
    for run in runs:
        assert app["effects"].count(where={"run": run["id"]}) == 1  # once, whatever the kills
        steps = app.runs.steps(int(run["id"]))
        assert not [s for s in steps if s["status"] == "running"]
        writes = [s for s in steps if s["step"] == "write"]
        assert writes[0]["status"] == "failed" and "worker stopped" in writes[0]["error"]
        assert writes[-1]["status"] == "succeeded" and writes[-1]["outputs"]["attempt"] >= 2
    return runs


def test_a_worker_killed_mid_notebook_step_is_recovered(
    jobs: Appbook, executor: LocalExecutor
) -> None:
    ids = []
    for n in range(3):  # repeatedly: one kill per run
        record = jobs["jobs"].create({"title": f"j{n}"})
        run_id = int(jobs.runs.start("jobs", "effect", record_id=record["id"])["id"])
        ids.append(run_id)
        executor.wake()
        wait_until(lambda i=run_id: effect_made(jobs, i), timeout=120, what="the side effect")
        pid = holder_pid(jobs, run_id)
        assert pid in executor.pids
        os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: all(jobs.runs.get(i)["status"] == "succeeded" for i in ids),
        timeout=240,
        what="every run to finish after the kills",
    )
    check_exactly_once(jobs, ids)
    assert executor.restarts == 3
    assert all(jobs["jobs"].get(jobs.runs.get(i)["record_id"])["done"] for i in ids)


def start_worker(config: EngineConfig, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **config.environment(),
        "APPBOOK_RUN_LEASE": "3",
        "APPBOOK_WORKER_POLL": "0.1",
    }
    command = [sys.executable, "-m", "appbook", "worker", "--local", "--concurrency", "1"]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)


def kill_group(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and every process of its session (its worker processes)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def test_the_whole_worker_killed_mid_step_and_started_again(
    jobs: Appbook, config: EngineConfig, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    ids = []
    worker = start_worker(config, log)
    try:
        for n in range(2):
            record = jobs["jobs"].create({"title": f"w{n}"})
            run_id = int(jobs.runs.start("jobs", "effect", record_id=record["id"])["id"])
            ids.append(run_id)
            wait_until(lambda i=run_id: effect_made(jobs, i), timeout=120, what="the side effect")
            kill_group(worker)
            worker = start_worker(config, log)
        wait_until(
            lambda: all(jobs.runs.get(i)["status"] == "succeeded" for i in ids),
            timeout=240,
            what="every run to finish after the kills",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        finally:
            kill_group(worker)
    check_exactly_once(jobs, ids)
