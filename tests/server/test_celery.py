"""The Celery executor end to end: real ``appbook worker`` processes over a real Redis (our
own server on a free port, so restarting it disturbs nobody), a real Dispatcher, runs on
SQLite (across processes, WAL) and PostgreSQL. Faults: a worker SIGKILLed in the middle of
a step (an update blocked on a row lock, on PostgreSQL; a notebook step with a keyed side
effect, on both), and a Redis restart that drops every queued message."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.errors import ExecutorMisconfigured
from appbook.server.systables import RUNS, STEP_RUNS
from appbook.server.workflows.celery_app import AppbookCelery, CelerySettings, make_celery
from appbook.server.workflows.celery_executor import CeleryExecutor
from appbook.server.workflows.dispatch import Dispatcher
from tests.celery_procs import (
    BIN,
    RedisServer,
    celery_workers,
    redis_server,
    wait_until,
    worker_env,
)
from tests.serving import service_missing

pytestmark = [pytest.mark.redis, pytest.mark.slow]

JOBS = """\
name: jobs
fields:
  amount: {type: number}
  status: {type: integer, default: 0}
  note: {type: string}
workflows:
  five:
    stages:
      - name: s
        steps:
          - {name: mark, update_field: {field: status, value: 1}, retries: {count: 2, backoff: 1s}}
          - {name: check, if: "record.amount >= 0", then: pause, else: pause}
          - {name: pause, wait: {for: 1s}}
          - {name: hold, update_field: {field: note, value: held}, retries: {count: 2, backoff: 1s}}
          - {name: done, finish: {}}
"""
STEPS = ["mark", "check", "pause", "hold", "done"]
LEASE = 3  # seconds: a killed worker's run is taken over within a few seconds


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    """Our own Redis server, keeping nothing on disk (as the broker runs by default)."""
    try:
        with redis_server(tmp_path / "redis") as server:
            yield server
    except FileNotFoundError as exc:
        service_missing("redis-server", exc)


@pytest.fixture
def jobs(app: Appbook) -> Appbook:
    app.publish_texts({"jobs.component.yaml": JOBS})
    return app


def _env(app: Appbook, broker: RedisServer) -> dict[str, str]:
    return worker_env(app.config.environment(), broker.url, APPBOOK_RUN_LEASE=LEASE)


def _celery(broker: RedisServer) -> AppbookCelery:
    return make_celery(EngineConfig.from_values(redis_url=broker.url), CelerySettings(lease=LEASE))


def _start(app: Appbook, count: int) -> list[int]:
    ids = []
    for n in range(count):
        record = app["jobs"].create({"amount": n})
        ids.append(int(app.runs.start("jobs", "five", record_id=record["id"])["id"]))
    return ids


def _all_succeeded(app: Appbook, ids: list[int]) -> bool:
    with app.engine.connect() as conn:
        statuses = conn.execute(sa.select(RUNS.c.status).where(RUNS.c.id.in_(ids))).scalars()
        return all(s == "succeeded" for s in statuses)


def _check_ran_once(app: Appbook, ids: list[int]) -> None:
    """Every run succeeded, each step succeeded exactly once, each record written once per
    update step, nothing left running or held."""
    for run_id in ids:
        run = app.runs.get(run_id)
        assert run["status"] == "succeeded", run
        assert run["lease_owner"] is None
        done = [s["step"] for s in app.runs.steps(run_id) if s["status"] == "succeeded"]
        assert done == STEPS
        record = app["jobs"].get(run["record_id"])
        assert (record["status"], record["note"], record["version"]) == (1, "held", 3)
    with app.engine.connect() as conn:
        running = conn.execute(sa.select(STEP_RUNS.c.id).where(STEP_RUNS.c.status == "running"))
        assert running.first() is None


def test_runs_finish_on_two_celery_workers(
    jobs: Appbook, broker: RedisServer, tmp_path: Path
) -> None:
    celery = _celery(broker)
    dispatcher = Dispatcher(jobs, celery.send_advance, interval=0.2, redispatch_after=30)
    ids = _start(jobs, 12)
    with celery_workers(2, _env(jobs, broker), tmp_path, concurrency=2) as workers:
        dispatcher.start()
        try:
            wait_until(lambda: _all_succeeded(jobs, ids), timeout=120, what="12 runs")
        finally:
            dispatcher.stop()
        logs = [w.output() for w in workers]
    _check_ran_once(jobs, ids)
    assert all("Task appbook.advance[" in log and "succeeded in" in log for log in logs)  # both
    assert dispatcher.sent >= 2 * len(ids)  # once queued, once more when each wait ended
    celery.close()


@pytest.fixture
def pg_jobs(pg_url: str, tmp_path: Path) -> Iterator[Appbook]:
    """The jobs component on PostgreSQL only (a step blocks on a row lock there)."""
    config = EngineConfig.from_values(
        home=str(tmp_path / "home"), database_url=pg_url, redis_url=""
    )
    with Appbook(config, actor="tester") as app:
        app.publish_texts({"jobs.component.yaml": JOBS})
        yield app


def test_a_worker_killed_mid_step_has_its_run_finished_once_by_another(
    pg_jobs: Appbook, broker: RedisServer, tmp_path: Path
) -> None:
    app = pg_jobs
    celery = _celery(broker)
    dispatcher = Dispatcher(app, celery.send_advance, interval=0.2, redispatch_after=30)
    record = app["jobs"].create({"amount": 5})
    table = app.registry.get("jobs").table
    # The test holds the record's row lock, so the worker's first step (`mark`, an update of
    # that record) blocks in the middle: a step that takes as long as we like, a real write.
    locker = app.engine.connect()
    lock = locker.begin()
    locker.execute(sa.select(table.c.id).where(table.c.id == record["id"]).with_for_update())
    try:
        with celery_workers(2, _env(app, broker), tmp_path) as workers:
            run_id = int(app.runs.start("jobs", "five", record_id=record["id"])["id"])
            dispatcher.start()
            held = wait_until(lambda: _running_step(app, run_id, "mark"), timeout=60, what="mark")
            victim = next(w for w in workers if _pgid(held) == w.pid)
            victim.kill()
            lock.rollback()  # the dead worker's write never committed; the next one may go
            wait_until(lambda: _all_succeeded(app, [run_id]), timeout=90, what="the run")
            assert all(w.proc.poll() is None for w in workers if w is not victim)
        dispatcher.stop()
    finally:
        dispatcher.stop()
        locker.close()
    attempts = [(s["step"], s["status"]) for s in app.runs.steps(run_id) if s["step"] == "mark"]
    assert attempts == [("mark", "failed"), ("mark", "succeeded")]
    first = app.runs.steps(run_id)[0]
    assert "its worker stopped before it finished" in first["error"]
    _check_ran_once(app, [run_id])  # the record was written once by `mark`: version 3
    celery.close()


def _running_step(app: Appbook, run_id: int, step: str) -> int | None:
    """The pid in the lease owner's name while ``step`` runs (``celery@host:pid:…``)."""
    run = app.runs.get(run_id)
    running = [s for s in app.runs.steps(run_id) if s["step"] == step and s["status"] == "running"]
    if not running or not run["lease_owner"]:
        return None
    return int(run["lease_owner"].split(":")[-2])


def _pgid(pid: int) -> int:
    return os.getpgid(pid)


def test_runs_queued_when_redis_restarts_are_sent_again_and_finish(
    jobs: Appbook, broker: RedisServer, tmp_path: Path
) -> None:
    celery = _celery(broker)
    dispatcher = Dispatcher(jobs, celery.send_advance, interval=0.2, redispatch_after=2)
    ids = _start(jobs, 8)
    assert sorted(dispatcher.tick()) == ids  # queued in Redis; no worker runs yet
    client = broker.client()
    assert client.llen("appbook") == len(ids)
    broker.restart()  # nothing on disk: every queued message is gone
    client = broker.client()
    assert client.llen("appbook") == 0
    with celery_workers(1, _env(jobs, broker), tmp_path, concurrency=2) as workers:
        dispatcher.start()
        try:
            wait_until(lambda: _all_succeeded(jobs, ids), timeout=120, what="the lost runs")
            _check_ran_once(jobs, ids)
            # The worker outlives a second restart: it reconnects and takes new runs.
            broker.restart()
            more = _start(jobs, 3)
            wait_until(lambda: _all_succeeded(jobs, more), timeout=120, what="runs after restart")
        finally:
            dispatcher.stop()
        assert workers[0].proc.poll() is None
    _check_ran_once(jobs, ids + more)
    client.close()
    celery.close()


def test_celery_worker_refuses_a_visibility_timeout_shorter_than_a_step(
    app: Appbook, broker: RedisServer, tmp_path: Path
) -> None:
    app.publish_texts(
        {"jobs.component.yaml": JOBS.replace("value: held}", "value: held}, timeout: 3h")}
    )
    env = _env(app, broker) | {"APPBOOK_CELERY_VISIBILITY_TIMEOUT": "7200"}
    celery = [str(BIN / "celery"), "-A", "appbook.server.workflows.celery_app", "worker"]
    for args in (celery, [str(BIN / "appbook"), "worker"]):
        done = subprocess.run(
            args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, done
        message = done.stdout + done.stderr
        assert "step 'hold' of workflow 'five' of component 'jobs' has timeout 10800 s" in message
        assert "APPBOOK_CELERY_VISIBILITY_TIMEOUT" in message
        assert " ready." not in message


def test_the_celery_executor_of_the_server_dispatches_to_workers(
    jobs: Appbook,
    broker: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = EngineConfig.from_values(
        home=jobs.config.home, database_url=jobs.config.database_url, redis_url=broker.url
    )
    monkeypatch.setenv("APPBOOK_CELERY_VISIBILITY_TIMEOUT", "60")
    with pytest.raises(ExecutorMisconfigured, match="step 'mark' of workflow 'five'"):
        CeleryExecutor(config, lease=LEASE, poll=0.2).start()
    monkeypatch.delenv("APPBOOK_CELERY_VISIBILITY_TIMEOUT")
    executor = CeleryExecutor(config, lease=LEASE, poll=0.2)
    with celery_workers(1, _env(jobs, broker), tmp_path):
        executor.start()
        try:
            ids = _start(jobs, 3)
            executor.wake()
            wait_until(lambda: _all_succeeded(jobs, ids), timeout=120, what="3 runs")
            # A step published later that the visibility timeout does not cover: the
            # workers run already, so the dispatcher says so in the server's log.
            longer = JOBS.replace("value: held}", "value: held}, timeout: 3h")
            jobs.publish_texts({"jobs.component.yaml": longer})
            ids += _start(jobs, 1)
            with caplog.at_level("ERROR", logger="appbook.server.workflows.celery_executor"):
                executor.wake()
                wait_until(lambda: _all_succeeded(jobs, ids), timeout=120, what="the 4th run")
        finally:
            executor.stop()
    _check_ran_once(jobs, ids)
    logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 1
    assert "publication 2: Celery's visibility timeout (7200 s)" in logged[0]
    assert "step 'hold' of workflow 'five' of component 'jobs' has timeout 10800 s" in logged[0]


@pytest.fixture
def notebook_jobs(app: Appbook, tmp_path: Path) -> Appbook:
    """The local executor's fault-test workflow: a notebook step whose side effect is a
    record keyed by the idempotency key, after which the first attempt dawdles."""
    from tests.server.test_executor_faults import CELL, EFFECTS, JOBS, notebook

    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "jobs.component.yaml").write_text(JOBS)
    (folder / "effects.component.yaml").write_text(EFFECTS)
    (folder / "write.ipynb").write_text(notebook(CELL))
    app.publish(folder)
    return app


def test_a_worker_killed_mid_notebook_step_has_the_effect_happen_once(
    notebook_jobs: Appbook, broker: RedisServer, tmp_path: Path
) -> None:
    from tests.server.test_executor_faults import check_exactly_once, effect_made

    app = notebook_jobs
    celery = _celery(broker)
    dispatcher = Dispatcher(app, celery.send_advance, interval=0.2, redispatch_after=30)
    record = app["jobs"].create({"title": "j"})
    with celery_workers(2, _env(app, broker), tmp_path / "workers") as workers:
        run_id = int(app.runs.start("jobs", "effect", record_id=record["id"])["id"])
        dispatcher.start()
        try:
            wait_until(lambda: effect_made(app, run_id), timeout=180, what="the side effect")
            holder = _running_step(app, run_id, "write")
            assert holder is not None  # the step is under way: its notebook dawdles
            victim = next(w for w in workers if _pgid(holder) == w.pid)
            victim.kill()  # the whole worker: main process and pool
            wait_until(lambda: _all_succeeded(app, [run_id]), timeout=240, what="the run")
        finally:
            dispatcher.stop()
        assert [w.proc.poll() is None for w in workers].count(True) == 1
    check_exactly_once(app, [run_id])
    celery.close()


def test_appbook_serve_with_the_celery_executor_feeds_appbook_worker(
    broker: RedisServer, tmp_path: Path
) -> None:
    import json
    import urllib.request

    from tests.serving import appbook_serve

    definitions = tmp_path / "defs"
    definitions.mkdir()
    (definitions / "jobs.component.yaml").write_text(JOBS)
    env = {"APPBOOK_WORKFLOW_EXECUTOR": "celery", "APPBOOK_REDIS_URL": broker.url}
    with appbook_serve(tmp_path, token="tok", publish=[definitions], env=env) as served:
        config = EngineConfig.from_values(home=str(tmp_path / "home"), redis_url="")
        workers = celery_workers(1, served.env, tmp_path / "w")
        with Appbook(config, actor="tester") as app, workers as (worker,):
            record = app["jobs"].create({"amount": 3})
            request = urllib.request.Request(
                f"{served.url}/appbook/api/workflows/jobs/five/runs",
                data=json.dumps({"record_id": record["id"]}).encode(),
                headers={"Authorization": "token tok", "Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 201
                run_id = int(json.load(response)["id"])
            wait_until(lambda: _all_succeeded(app, [run_id]), timeout=120, what="the run")
            _check_ran_once(app, [run_id])
            assert "Task appbook.advance[" in worker.output()  # the worker ran it, not the server
