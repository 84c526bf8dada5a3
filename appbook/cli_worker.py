"""``appbook worker``: advance workflow runs outside the server.

By default a Celery worker over ``APPBOOK_REDIS_URL`` (see
:mod:`appbook.server.workflows.celery_app`); ``--local`` is the local executor's worker
loop, without Redis.
"""

from __future__ import annotations

import click

from .cli import data_options, fail, main
from .server.errors import AppbookError

LOGLEVELS = ["debug", "info", "warning", "error"]


@main.command("worker")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Worker processes (default: the number of CPUs).",
)
@click.option(
    "--loglevel", type=click.Choice(LOGLEVELS), default="info", show_default=True, help="Logging."
)
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default="prefork",
    show_default=True,
    help="Celery's execution pool.",
)
@click.option("-n", "--hostname", help="Celery node name (default celery@HOST).")
@click.option(
    "--lease",
    type=click.FloatRange(min=1),
    envvar="APPBOOK_RUN_LEASE",
    help="Seconds a worker holds a run between heartbeats (default 60).",
)
@click.option(
    "--local", is_flag=True, help="Run the local executor's worker loop instead (no Redis)."
)
@click.option("--redis-url", envvar="APPBOOK_REDIS_URL", help="Redis URL of the broker.")
@data_options
def worker(
    concurrency: int | None,
    loglevel: str,
    pool: str,
    hostname: str | None,
    lease: float | None,
    local: bool,
    redis_url: str | None,
    home: str | None,
    database_url: str | None,
) -> None:
    """Advance workflow runs: a Celery worker over APPBOOK_REDIS_URL (or --local)."""
    if local:
        run_local(home, database_url, concurrency or 2, lease)
        return
    from .server.config import EngineConfig

    config = EngineConfig.from_values(home=home, database_url=database_url, redis_url=redis_url)
    try:
        # Imported here: the module reads its settings from APPBOOK_* variables at import.
        from .server.workflows.celery_app import CelerySettings, make_celery, preflight

        settings = CelerySettings() if lease is None else CelerySettings(lease=lease)
        celery_app = make_celery(config, settings)
        preflight(celery_app)  # a clear error here rather than in Celery's log
    except AppbookError as exc:
        fail(exc)
    argv = ["worker", f"--loglevel={loglevel}", f"--pool={pool}"]
    # No mingle or gossip: workers share nothing but the database (no revokes, no events).
    argv += ["--without-mingle", "--without-gossip"]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    celery_app.worker_main(argv)


def run_local(
    home: str | None, database_url: str | None, processes: int, lease: float | None
) -> None:
    """The local executor in the foreground: ``processes`` worker processes over the
    database, until Ctrl-C or SIGTERM (each stops after its current step)."""
    import signal
    import threading

    from .server.config import EngineConfig
    from .server.engine import Appbook
    from .server.workflows.executor import LocalExecutor
    from .server.workflows.runs import LEASE_SECONDS

    config = EngineConfig.from_values(home=home, database_url=database_url)
    try:
        with Appbook(config) as app:  # a clear error now if the database cannot be reached
            where = repr(app)  # without a password
    except AppbookError as exc:
        fail(exc)
    executor = LocalExecutor(config, processes=processes, lease=lease or LEASE_SECONDS)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    executor.start()
    click.echo(f"appbook worker --local: {processes} processes on {where}")
    done.wait()
    click.echo("stopping (each worker finishes its current step)")
    executor.stop()
