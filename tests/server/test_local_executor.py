"""Executors: queued and waiting runs are advanced by the local executor's worker processes
and, with the same tests, by Celery workers over Redis; the local executor restarts its
processes when they die and stops with its server; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.workflows.celery_executor import CeleryExecutor
from appbook.server.workflows.executor import Executor, LocalExecutor
from tests.celery_procs import celery_workers, redis_server, worker_env

pytestmark = pytest.mark.slow

TASKS = """\
name: tasks
fields:
  title: {type: string}
  state: {type: string}
  size: {type: integer}
workflows:
  triage:
    stages:
      - name: only
        steps:
          - {name: start, update_field: {field: state, value: started}}
          - name: big
            if: "record.size > 10"
            then: large
            else: small
          - {name: large, update_field: {field: state, value: large}, next: done}
          - {name: small, update_field: {field: state, value: small}}
          - {name: done, finish: {}}
  pause:
    stages:
      - name: only
        steps:
          - {name: nap, wait: {for: 1s}}
          - {name: mark, update_field: {field: state, value: rested}}
"""


def wait_until(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what or check}")


@pytest.fixture
def tasks(app: Appbook, tmp_path: Path) -> Appbook:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "tasks.component.yaml").write_text(TASKS)
    app.publish(folder)
    return app


@pytest.fixture(params=["local", "celery"])
def any_executor(
    request: pytest.FixtureRequest, config: EngineConfig, tmp_path: Path
) -> Iterator[Executor]:
    """Each executor in turn: the local one, then two real Celery workers over our own Redis
    fed by the server-side dispatcher (the Celery executor as `appbook serve` runs it)."""
    if request.param == "local":
        yield request.getfixturevalue("executor")
        return
    request.applymarker(pytest.mark.redis)
    with redis_server(tmp_path / "redis") as broker:
        env = worker_env(config.environment(), broker.url, APPBOOK_RUN_LEASE=3)
        with celery_workers(2, env, tmp_path / "workers"):
            served = EngineConfig.from_values(
                home=config.home, database_url=config.database_url, redis_url=broker.url
            )
            running = CeleryExecutor(served, lease=3, poll=0.1)
            running.start()
            try:
                yield running
            finally:
                running.stop()


def finished(app: Appbook, ids: list[int]) -> list[dict[str, Any]] | None:
    runs = [app.runs.get(i) for i in ids]
    return runs if all(r["status"] in ("succeeded", "failed") for r in runs) else None


def test_queued_runs_are_advanced_by_worker_processes(
    tasks: Appbook, any_executor: Executor
) -> None:
    records = [tasks["tasks"].create({"title": f"t{i}", "size": i * 5}) for i in range(6)]
    ids = [int(tasks.runs.start("tasks", "triage", record_id=r["id"])["id"]) for r in records]
    any_executor.wake()
    runs = wait_until(lambda: finished(tasks, ids), what="runs to finish")
    assert [r["status"] for r in runs] == ["succeeded"] * 6
    states = [tasks["tasks"].get(r["id"])["state"] for r in records]
    assert states == ["small", "small", "small", "large", "large", "large"]
    assert all(r["lease_owner"] is None for r in runs)  # released
    # Steps ran in worker processes acting as the user who started the run.
    assert {tasks["tasks"].get(r["id"])["updated_by"] for r in records} == {"tester"}


def test_a_wait_is_picked_up_again_when_it_is_due(tasks: Appbook, executor: LocalExecutor) -> None:
    record = tasks["tasks"].create({"title": "t"})
    run = tasks.runs.start("tasks", "pause", record_id=record["id"])
    wait_until(lambda: tasks.runs.get(int(run["id"]))["status"] == "waiting", what="the wait")
    done = wait_until(lambda: finished(tasks, [int(run["id"])]), what="the run to go on")
    assert done[0]["status"] == "succeeded"
    assert tasks["tasks"].get(record["id"])["state"] == "rested"


def test_a_killed_worker_is_replaced(tasks: Appbook, executor: LocalExecutor) -> None:
    first = executor.pids
    assert len(first) == 2
    os.kill(first[0], signal.SIGKILL)
    wait_until(lambda: executor.restarts == 1 and len(executor.pids) == 2, what="a new worker")
    assert first[0] not in executor.pids
    record = tasks["tasks"].create({"title": "after", "size": 50})
    run = tasks.runs.start("tasks", "triage", record_id=record["id"])
    executor.wake()
    wait_until(lambda: finished(tasks, [int(run["id"])]), what="the run")
    assert tasks["tasks"].get(record["id"])["state"] == "large"


def test_stop_leaves_no_worker_behind(config: EngineConfig, tasks: Appbook) -> None:
    executor = LocalExecutor(config, processes=2, lease=3, poll=0.1)
    executor.start()
    pids = executor.pids
    executor.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert executor.pids == []


def test_a_cancel_while_a_step_runs_wins(tasks: Appbook) -> None:
    """The step's outcome does not overwrite a cancellation made while it ran."""
    record = tasks["tasks"].create({"title": "t", "size": 1})
    run = tasks.runs.start("tasks", "triage", record_id=record["id"])
    claimed = tasks.runs.claim("w1")
    assert claimed is not None
    tasks.runs.cancel(int(run["id"]))
    result = tasks.runs.advance(int(run["id"]), owner="w1")
    assert result["status"] == "cancelled" and result["lease_owner"] is None


def test_a_stopping_worker_hands_its_run_back(tasks: Appbook) -> None:
    record = tasks["tasks"].create({"title": "t", "size": 1})
    run = tasks.runs.start("tasks", "triage", record_id=record["id"])
    assert tasks.runs.claim("w1") is not None
    stopped = tasks.runs.advance(int(run["id"]), owner="w1", stop=lambda: True)
    assert stopped["status"] == "queued" and stopped["lease_owner"] is None
    again = tasks.runs.claim("w2")
    assert again is not None and again["id"] == run["id"]
    assert tasks.runs.advance(int(run["id"]), owner="w2")["status"] == "succeeded"
