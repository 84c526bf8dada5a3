"""Workflow executors: runs per minute of a 5-step kernel-free workflow, by executor and
number of workers, in the same run, on the same data.

Each pass starts ``--runs`` runs of ``jobs.five`` (update_field, if, wait 1 s, update_field,
finish), each on its own record, lets the executor advance them, and times from the moment
the executor may take them to the moment all have succeeded (polled every 50 ms). Every run
is then checked to have each of its five steps succeed exactly once.

Executors (``EXECUTORS``; add one as a function with the same signature):

* ``celery``: ``--workers`` counts of real ``appbook worker`` processes (one pool process
  each unless ``--concurrency``) over our own ``redis-server`` on a free port, fed by a
  :class:`~appbook.server.workflows.dispatch.Dispatcher` in this process;
* ``local``: ``--workers`` worker processes of the local executor (no Redis).

Run by hand (it asserts nothing about speed):
``.venv/bin/python bench/workflows.py [--backend sqlite|postgresql|both] [--runs 200]
[--workers 1,2] [--executor local,celery]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.celery_procs
from _common import load_average, machine, server_version, temporary_database

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.systables import RUNS, STEP_RUNS
from appbook.server.workflows.celery_app import CelerySettings, make_celery
from appbook.server.workflows.dispatch import Dispatcher
from appbook.server.workflows.executor import LocalExecutor
from tests.celery_procs import celery_workers, redis_server, worker_env

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
          - {name: mark, update_field: {field: status, value: 1}}
          - {name: check, if: "record.amount >= 0", then: pause, else: pause}
          - {name: pause, wait: {for: 1s}}
          - {name: hold, update_field: {field: note, value: held}}
          - {name: done, finish: {}}
"""
LEASE = 10

# An executor pass: (app, ids of queued runs, workers, options) -> seconds until all succeeded.
Executor = Callable[[Appbook, list[int], int, argparse.Namespace], float]


def start_runs(app: Appbook, count: int) -> list[int]:
    """``count`` queued runs of ``jobs.five``, each on a new record."""
    ids = []
    for n in range(count):
        record = app["jobs"].create({"amount": n})
        ids.append(int(app.runs.start("jobs", "five", record_id=record["id"])["id"]))
    return ids


def succeeded(app: Appbook, ids: list[int]) -> int:
    """How many of ``ids`` have succeeded."""
    query = sa.select(sa.func.count()).where(RUNS.c.id.in_(ids), RUNS.c.status == "succeeded")
    with app.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def wait_all(app: Appbook, ids: list[int], timeout: float = 1800) -> None:
    """Return once every run in ``ids`` succeeded (RuntimeError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while succeeded(app, ids) < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {succeeded(app, ids)} of {len(ids)} runs succeeded")
        time.sleep(0.05)


def check_once(app: Appbook, ids: list[int]) -> None:
    """Each run's five steps succeeded exactly once (RuntimeError otherwise)."""
    query = (
        sa.select(STEP_RUNS.c.run_id, sa.func.count())
        .where(STEP_RUNS.c.run_id.in_(ids), STEP_RUNS.c.status == "succeeded")
        .group_by(STEP_RUNS.c.run_id)
    )
    with app.engine.connect() as conn:
        counts = dict(conn.execute(query).all())
    wrong = {run: n for run, n in counts.items() if n != 5}
    if wrong or len(counts) != len(ids):
        raise RuntimeError(f"runs whose steps did not run exactly once: {wrong}")


def run_celery(app: Appbook, ids: list[int], workers: int, args: argparse.Namespace) -> float:
    """``workers`` ``appbook worker`` processes over a fresh redis-server."""
    with tempfile.TemporaryDirectory(prefix="appbook-bench-celery-") as folder:
        with redis_server(Path(folder)) as broker:
            env = worker_env(app.config.environment(), broker.url, APPBOOK_RUN_LEASE=LEASE)
            celery = make_celery(
                EngineConfig.from_values(redis_url=broker.url), CelerySettings(lease=LEASE)
            )
            dispatcher = Dispatcher(app, celery.send_advance, interval=0.1, redispatch_after=60)
            with celery_workers(workers, env, Path(folder), concurrency=args.concurrency):
                started = time.perf_counter()
                dispatcher.start()
                try:
                    wait_all(app, ids)
                finally:
                    dispatcher.stop()
                elapsed = time.perf_counter() - started
            celery.close()
    return elapsed


def run_local(app: Appbook, ids: list[int], workers: int, args: argparse.Namespace) -> float:
    """The local executor (what ``appbook serve`` runs by default): ``workers`` worker
    processes of this machine claiming runs from the database, no broker. Its time
    includes starting them; Celery's workers are started before the clock."""
    executor = LocalExecutor(app.config, processes=workers, lease=LEASE, poll=0.1)
    started = time.perf_counter()
    executor.start()
    try:
        executor.wake()
        wait_all(app, ids)
    finally:
        elapsed = time.perf_counter() - started
        executor.stop()
    return elapsed


EXECUTORS: dict[str, Executor] = {"celery": run_celery, "local": run_local}


def bench(backend: str, args: argparse.Namespace) -> list[str]:
    """Table rows for one backend: every executor, every worker count."""
    rows = []
    with temporary_database(backend) as (url, home):
        config = EngineConfig.from_values(home=str(home), database_url=url, redis_url="")
        with Appbook(config, actor="bench") as app:
            app.publish_texts({"jobs.component.yaml": JOBS})
            version = server_version(app.engine)
            for name in args.executor:
                for workers in args.workers:
                    ids = start_runs(app, args.runs)
                    seconds = EXECUTORS[name](app, ids, workers, args)
                    check_once(app, ids)
                    rate = len(ids) / seconds * 60
                    rows.append(
                        f"| {name} | {version} | {workers} | {args.concurrency} | {len(ids)} "
                        f"| {seconds:.1f} | {rate:,.0f} |"
                    )
                    print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=1, help="pool processes per worker")
    parser.add_argument(
        "--executor",
        type=lambda s: s.split(","),
        default=["local", "celery"],
        help="comma-separated",
    )
    args = parser.parse_args(argv)
    unknown = [e for e in args.executor if e not in EXECUTORS]
    if unknown:
        parser.error(f"unknown executor {unknown}: choose from {', '.join(EXECUTORS)}")
    print(f"{machine()}; load average {load_average()}")
    print("| executor | database | workers | processes each | runs | seconds | runs/min |")
    print("|---|---|---|---|---|---|---|")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        bench(backend, args)
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
