"""The Celery executor's app: one task, ``appbook.advance(run_id)``, over Redis.

The database is the source of truth and the broker only a transport. A message carries a
run id, nothing else; the task claims that run under a database lease and advances it
(:func:`.worker.advance_one`), so a message delivered twice, or to two workers, still has
the run advanced by one worker at a time, and a message lost (Redis keeps nothing on disk
by default) is sent again by the dispatcher's reconciler (:mod:`.dispatch`).

Late acknowledgement (``acks_late``) keeps a message until its task returns, and
``reject_on_worker_lost`` puts it back when the pool process running it dies; with a
prefetch of one a worker holds no more messages than it runs. No results are stored: the
run row is the result.

Each worker process builds one :class:`~appbook.server.engine.Appbook` after the prefork
pool forked it (``worker_process_init``), never sharing a SQLAlchemy engine across a fork.
Before the pool starts, the main process checks Redis, the database and the visibility
timeout (:mod:`.visibility`) and refuses to start with the reason.

Start workers with ``appbook worker``, or ``celery -A appbook.server.workflows.celery_app
worker``; both read the data layer from ``APPBOOK_*`` variables.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from celery import Celery, Task, signals
from traitlets import Float, Unicode, default
from traitlets.config import Configurable

from ..config import EngineConfig
from ..db import read_transaction
from ..engine import Appbook
from ..errors import AppbookError, ServiceUnavailable
from ..systables import RUNS, utcnow
from .runs import LEASE_SECONDS, Runs
from .visibility import check_visibility
from .worker import advance_one, worker_name

log = logging.getLogger("appbook.celery")

TASK = "appbook.advance"
ACTOR = "appbook-worker"

__all__ = ["TASK", "AppbookCelery", "CelerySettings", "celery", "make_celery", "preflight"]


class CelerySettings(Configurable):
    """Settings of the Celery executor, shared by its workers and dispatchers."""

    lease = Float(
        help="Seconds a worker holds a run between heartbeats; a run whose worker died is "
        "taken over this long after its last heartbeat. Default: $APPBOOK_RUN_LEASE, else 60.",
    ).tag(config=True)

    visibility_timeout = Float(
        help="Redis visibility timeout in seconds: a message unacknowledged this long is "
        "delivered again. Must exceed the longest step timeout of any published workflow. "
        "Default: $APPBOOK_CELERY_VISIBILITY_TIMEOUT, else 7200.",
    ).tag(config=True)

    default_step_timeout = Float(
        help="Timeout in seconds assumed for steps without one, in the visibility check. "
        "Default: $APPBOOK_STEP_TIMEOUT, else 3600.",
    ).tag(config=True)

    redispatch_after = Float(
        help="Seconds after which a run still due is sent again (its message was lost, e.g. "
        "Redis restarted). Default: $APPBOOK_CELERY_REDISPATCH_AFTER, else 60.",
    ).tag(config=True)

    queue = Unicode(
        help="The Celery queue of workflow runs; give each Appbook deployment that shares a "
        "Redis its own. Default: $APPBOOK_CELERY_QUEUE, else appbook.",
    ).tag(config=True)

    @default("lease")
    def _default_lease(self) -> float:
        return _env_float("APPBOOK_RUN_LEASE", LEASE_SECONDS)

    @default("visibility_timeout")
    def _default_visibility_timeout(self) -> float:
        return _env_float("APPBOOK_CELERY_VISIBILITY_TIMEOUT", 7200.0)

    @default("default_step_timeout")
    def _default_step_timeout(self) -> float:
        return _env_float("APPBOOK_STEP_TIMEOUT", 3600.0)

    @default("redispatch_after")
    def _default_redispatch_after(self) -> float:
        return _env_float("APPBOOK_CELERY_REDISPATCH_AFTER", 60.0)

    @default("queue")
    def _default_queue(self) -> str:
        return os.environ.get("APPBOOK_CELERY_QUEUE") or "appbook"


def _env_float(name: str, fallback: float) -> float:
    text = os.environ.get(name)
    if not text:
        return fallback
    try:
        return float(text)
    except ValueError:
        raise AppbookError(f"${name}: expected a number of seconds, got {text!r}") from None


class AppbookCelery(Celery):
    """A Celery app that knows the data layer its workers advance runs of."""

    def __init__(self, config: EngineConfig, settings: CelerySettings) -> None:
        super().__init__("appbook", broker=config.redis_url or None, set_as_current=False)
        self.engine_config = config
        self.settings = settings
        self.checked = False  # preflight passed (appbook worker checks before Celery starts)
        self.conf.update(
            task_ignore_result=True,
            task_acks_late=True,
            task_reject_on_worker_lost=True,
            worker_prefetch_multiplier=1,
            task_default_queue=settings.queue,
            task_serializer="json",
            accept_content=["json"],
            broker_transport_options={"visibility_timeout": settings.visibility_timeout},
            broker_connection_retry_on_startup=True,
            # A lost broker connection must not stop a step mid-way: the run row, not the
            # message, says what is done, and the message is sent again if need be.
            worker_cancel_long_running_tasks_on_connection_loss=False,
            worker_hijack_root_logger=False,
        )
        self.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_advance)

    def send_advance(self, run_id: int) -> None:
        """Queue ``appbook.advance(run_id)`` (the dispatcher's ``send``)."""
        self.send_task(TASK, args=[run_id])


def make_celery(
    config: EngineConfig | None = None, settings: CelerySettings | None = None
) -> AppbookCelery:
    """The Celery app over ``config.redis_url`` (default: from ``APPBOOK_*`` variables)."""
    return AppbookCelery(config or EngineConfig(), settings or CelerySettings())


def preflight(celery_app: AppbookCelery) -> None:
    """Refuse to start (an :class:`AppbookError` saying why) unless Redis answers, the
    database is reachable and up to date, and the visibility timeout fits every step."""
    config, settings = celery_app.engine_config, celery_app.settings
    if not config.redis_url:
        raise ServiceUnavailable(
            "the Celery executor needs Redis: set APPBOOK_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
        )
    ping_redis(config.redis_url)
    with Appbook(config, actor=ACTOR) as app:  # closed again before the pool forks
        check_visibility(app, settings.visibility_timeout, settings.default_step_timeout)
    celery_app.checked = True


def ping_redis(url: str) -> None:
    """ServiceUnavailable naming the Redis server unless it answers a PING."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        parts = urlsplit(url)
        where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"  # no password
        raise ServiceUnavailable(f"Redis at {where} does not answer: {exc}") from exc
    finally:
        client.close()


# -- one data layer per worker process -------------------------------------------------
_lock = threading.Lock()
_state: tuple[Appbook, str] | None = None
_worker_app: AppbookCelery | None = None  # the app this worker runs, set before the fork


def _process_state(celery_app: AppbookCelery) -> tuple[Appbook, str]:
    """This process's Appbook and lease owner name, built on first use."""
    global _state
    with _lock:
        if _state is None:
            _state = (Appbook(celery_app.engine_config, actor=ACTOR), worker_name("celery"))
        return _state


def _advance(task: Task[Any, Any], run_id: int) -> None:
    """Advance run ``run_id`` if it is due and nobody holds it; otherwise return at once
    (a duplicate, or a run another worker holds: the dispatcher sends it again if need be)."""
    celery_app = task.app
    assert isinstance(celery_app, AppbookCelery)
    app, owner = _process_state(celery_app)
    if not _due(app, run_id):
        return
    advance_one(app, owner, run_id=run_id, lease=celery_app.settings.lease)


def _due(app: Appbook, run_id: int) -> bool:
    """Whether the run is due: a read that spares duplicates the claim's write lock."""
    query = sa.select(RUNS.c.id).where(RUNS.c.id == run_id, Runs.due(utcnow()))
    with read_transaction(app.engine) as conn:
        return conn.execute(query).first() is not None


@signals.worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    """In the worker's main process, before the pool starts: check, or refuse to start."""
    global _worker_app
    celery_app = getattr(sender, "app", None)
    if not isinstance(celery_app, AppbookCelery):
        return
    _worker_app = celery_app
    if celery_app.checked:
        return
    try:
        preflight(celery_app)
    except AppbookError as exc:
        log.error("appbook worker cannot start: %s", exc.message)
        raise SystemExit(1) from exc  # SystemExit passes Celery's catch-all of signal errors


@signals.worker_process_init.connect
def _on_process_init(**_: Any) -> None:
    """In each forked pool process: drop anything inherited, build this process's engine."""
    global _state
    _state = None
    if _worker_app is not None:
        _process_state(_worker_app)


@signals.worker_process_shutdown.connect
def _on_process_shutdown(**_: Any) -> None:
    global _state
    with _lock:
        state, _state = _state, None
    if state is not None:
        state[0].close()


celery = make_celery()  # what ``celery -A appbook.server.workflows.celery_app`` finds
