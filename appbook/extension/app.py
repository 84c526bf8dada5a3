"""``AppbookApp``: the jupyter_server ExtensionApp that hosts the engine.

Settings are traitlets on this class, read in this order (first wins): the command line
(``--AppbookApp.database_url=...``), ``jupyter_server_config.py``
(``c.AppbookApp.database_url = ...``), the ``APPBOOK_*`` environment variable, the embedded
default.

It builds the engine in ``initialize_settings``, exports the data-layer location to the
environment so every kernel the server starts reaches the same data with
``appbook.connect()``, registers the REST routes, and closes everything in
``stop_extension``.
"""

from __future__ import annotations

import asyncio
import gc
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import Bool, Float, Int, Type, Unicode, default

from ..server.config import EngineConfig
from ..server.engine import Appbook
from ..server.point_reads import PointReader, point_reader
from ..server.workflows import webhooks
from ..server.workflows.executor import Executor
from ..server.workflows.triggers import TriggerService
from ..server.workflows.worker import worker_name
from .handlers import fallback, routes


def freeze_startup_heap() -> None:
    """Move everything allocated while the server started (JupyterLab, extensions, the
    definitions) out of the garbage collector's sight.

    A full collection walks every tracked object: with JupyterLab loaded that was 140 to 170 ms
    with the event loop stopped, every few seconds under load, and it set the p99 latency of
    ``GET records/{id}`` (bench/README.md). Frozen objects stay alive, which startup objects
    do anyway; collections then only look at what requests allocate.
    """
    gc.collect()
    gc.freeze()


EXECUTORS = {
    "local": "appbook.server.workflows.executor.LocalExecutor",
    "celery": "appbook.server.workflows.celery_executor.CeleryExecutor",
    "none": "appbook.server.workflows.executor.NoExecutor",
}


class AppbookApp(ExtensionApp):
    """Appbook inside jupyter_server (also started by ``appbook serve``)."""

    name = "appbook"
    description = "Appbook: a low-code application platform inside Jupyter"
    extension_url = "/lab"
    load_other_extensions = True
    # `appbook serve` is JupyterLab with Appbook: makers work in the lab.
    # Voilà's own extension serves any notebook under the root and files without
    # authentication; apps need only part of it, which Appbook registers (apps/assets.py).
    # App users (AppbookAuthorizer.app_users) reach their apps and nothing else.
    serverapp_config = {
        "jpserver_extensions": {"jupyterlab": True, "voila.server_extension": False},
        "authorizer_class": "appbook.extension.authz.AppbookAuthorizer",
    }

    home = Unicode(help=EngineConfig.class_traits()["home"].help).tag(config=True)
    database_url = Unicode(help=EngineConfig.class_traits()["database_url"].help).tag(config=True)
    redis_url = Unicode(help=EngineConfig.class_traits()["redis_url"].help).tag(config=True)
    files_url = Unicode(help=EngineConfig.class_traits()["files_url"].help).tag(config=True)
    key_file = Unicode(help=EngineConfig.class_traits()["key_file"].help).tag(config=True)
    max_body_size = Int(
        help="Largest accepted request body in bytes (413 above it), except file uploads, "
        "which have their own limits. Default: $APPBOOK_MAX_BODY_SIZE, else 64 MiB.",
    ).tag(config=True)
    db_threads = Int(
        help="Threads that run database work off the event loop (measured: 4 beat 8 on two "
        "cores, bench/README.md). Default: $APPBOOK_DB_THREADS, else 4.",
    ).tag(config=True)
    point_reads = Bool(
        True,
        help="Answer GET records/{id} from the event loop (async psycopg on PostgreSQL, a "
        "loop-owned connection on SQLite) instead of the thread pool; see "
        "appbook/server/point_reads.py. Off: every read takes the pool.",
    ).tag(config=True)
    app_pool_size = Int(
        help="Preheated kernels kept ready per app (a published component with pages), each "
        "with the app's first page already rendered, so it opens without a kernel start (0: "
        "every app open starts its own kernel, about 2 s). Default: $APPBOOK_APP_POOL_SIZE, "
        "else 1.",
    ).tag(config=True)

    @default("app_pool_size")
    def _default_app_pool_size(self) -> int:
        return int(os.environ.get("APPBOOK_APP_POOL_SIZE") or 1)

    app_kernel_idle = Float(
        help="Seconds an app kernel may stay without a connected page before it is shut "
        "down (a closed tab normally stops it at once; this catches crashed browsers and lost "
        "networks). 0: never. Default: $APPBOOK_APP_KERNEL_IDLE, else 120.",
    ).tag(config=True)

    @default("app_kernel_idle")
    def _default_app_kernel_idle(self) -> float:
        return float(os.environ.get("APPBOOK_APP_KERNEL_IDLE") or 120)

    wait_threads = Int(
        help="Threads for calls that mostly wait: long-polls and WebSockets waiting for events, "
        "uploads waiting for their body. Default: $APPBOOK_WAIT_THREADS, else 64.",
    ).tag(config=True)

    @default("wait_threads")
    def _default_wait_threads(self) -> int:
        return int(os.environ.get("APPBOOK_WAIT_THREADS") or 64)

    @default("max_body_size")
    def _default_max_body_size(self) -> int:
        return int(os.environ.get("APPBOOK_MAX_BODY_SIZE") or 64 * 1024 * 1024)

    @default("db_threads")
    def _default_db_threads(self) -> int:
        return int(os.environ.get("APPBOOK_DB_THREADS") or 4)

    workflow_executor_class = Type(
        default_value="appbook.server.workflows.executor.LocalExecutor",
        klass=Executor,
        help="Who advances workflow runs: LocalExecutor (worker processes on this machine, "
        "the default), appbook.server.workflows.celery_executor.CeleryExecutor (dispatch to "
        "`appbook worker` Celery workers over Redis), or NoExecutor (runs wait for another "
        "process). Default: $APPBOOK_WORKFLOW_EXECUTOR (local, celery or none), else local.",
    ).tag(config=True)

    @default("workflow_executor_class")
    def _default_workflow_executor_class(self) -> str:
        return EXECUTORS[os.environ.get("APPBOOK_WORKFLOW_EXECUTOR") or "local"]

    workflow_processes = Int(
        help="Worker processes of the local executor (each runs one step at a time; notebook "
        "steps use a warm kernel pool in each). Default: $APPBOOK_WORKFLOW_PROCESSES, else 2.",
    ).tag(config=True)

    @default("workflow_processes")
    def _default_workflow_processes(self) -> int:
        return int(os.environ.get("APPBOOK_WORKFLOW_PROCESSES") or 2)

    run_lease = Float(
        help="Seconds a worker holds a run between heartbeats; a worker silent for longer is "
        "taken for stopped and its run is recovered. Default: $APPBOOK_RUN_LEASE, else 60.",
    ).tag(config=True)

    @default("run_lease")
    def _default_run_lease(self) -> float:
        return float(os.environ.get("APPBOOK_RUN_LEASE") or 60)

    triggers = Bool(
        help="Fire cron and record-event triggers of workflows from this server (with several "
        "replicas, a database lease lets one fire at a time). Off: only manual runs and "
        "webhooks start runs here. Default: $APPBOOK_TRIGGERS (0 or 1), else on.",
    ).tag(config=True)

    @default("triggers")
    def _default_triggers(self) -> bool:
        return os.environ.get("APPBOOK_TRIGGERS", "1") not in ("0", "false", "no")

    webhook_rate = Float(
        webhooks.RATE,
        help="Requests a second each webhook accepts (a token bucket per hook); more get "
        "429 with Retry-After.",
    ).tag(config=True)
    webhook_burst = Int(
        webhooks.BURST, help="How many webhook requests may come at once, above the rate."
    ).tag(config=True)
    webhook_max_body = Int(
        webhooks.MAX_BODY, help="Bytes a webhook body may have; a larger one gets 413."
    ).tag(config=True)
    webhook_tolerance = Float(
        webhooks.TOLERANCE,
        help="Seconds a signed webhook's timestamp may be off the server's clock (the replay "
        "window).",
    ).tag(config=True)

    engine: Appbook | None = None
    workflow_executor: Executor | None = None
    trigger_service: TriggerService | None = None
    point_reader: PointReader | None = None
    executor: ThreadPoolExecutor | None = None
    wait_executor: ThreadPoolExecutor | None = None

    def engine_config(self) -> EngineConfig:
        """Engine settings: traits set here, else ``APPBOOK_*`` variables, else defaults."""
        names = ("home", "database_url", "redis_url", "files_url", "key_file")
        given = {n: getattr(self, n) for n in names if getattr(self, n)}
        # The server's whole config, so c.SmtpConfig and c.OutboundConfig apply too.
        return EngineConfig.from_values(config=self.config, **given)

    def initialize_settings(self) -> None:
        """Open the data layer and make it visible to kernels."""
        config = self.engine_config()
        self.engine = Appbook(config)
        self.executor = ThreadPoolExecutor(self.db_threads, thread_name_prefix="appbook-db")
        self.wait_executor = ThreadPoolExecutor(
            self.wait_threads, thread_name_prefix="appbook-wait"
        )
        # Kernels inherit the server's environment (jupyter_client copies os.environ).
        os.environ.update(config.environment())
        self.settings.update(
            appbook_engine=self.engine,
            appbook_executor=self.executor,
            appbook_wait_executor=self.wait_executor,
            appbook_max_body_size=self.max_body_size,
            appbook_webhooks=webhooks.Webhooks(
                self.engine,
                rate=self.webhook_rate,
                burst=self.webhook_burst,
                max_body=self.webhook_max_body,
                tolerance=self.webhook_tolerance,
            ),
        )
        from .metrics import install_metrics, log_with_request_id

        self.settings["appbook_observe"] = install_metrics(self.engine)
        self.settings["log_function"] = log_with_request_id(self.settings.get("log_function"))
        self.point_reader = point_reader(self.engine.engine, self.engine.registry, keep_fresh=True)
        self.settings["appbook_point_reader"] = self.point_reader if self.point_reads else None
        self.log.info("Appbook data layer: %s", self.engine)
        # Runs once the loop starts, that is after every extension has loaded.
        IOLoop.current().add_callback(freeze_startup_heap)

    def initialize_handlers(self) -> None:
        """Register the REST routes under /appbook/api/ and the apps under /appbook/apps/."""
        from .apps import APP_NOTEBOOK, setup_apps

        # Settings of our own are merged into the server's before handlers are prepared,
        # so the apps' go straight into the server's settings.
        assert self.serverapp is not None  # handlers are prepared by a loading server
        settings = self.serverapp.web_app.settings
        apps = setup_apps(self.serverapp, settings, self.app_pool_size)
        # The API's JSON 404 fallback comes last: it matches everything under /appbook/api/.
        self.handlers.extend([*routes, *apps, *fallback])
        kernels = settings["appbook_app_kernels"]
        if self.app_pool_size:
            IOLoop.current().add_callback(self._preheat_apps, kernels, APP_NOTEBOOK)
        IOLoop.current().add_callback(kernels.start_culler, self.app_kernel_idle)
        IOLoop.current().add_callback(self._keep_signals)

    async def _preheat_apps(self, kernels: Any, notebook: str) -> None:
        """Start a pool for every published app (apps published later get theirs on their
        first request)."""
        assert self.engine is not None and self.executor is not None
        loop = asyncio.get_running_loop()
        components = await loop.run_in_executor(self.executor, self.engine.registry.all)
        for name, comp in sorted(components.items()):
            if comp.definition.pages:
                kernels.fill(notebook, name)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Once the server runs: start advancing workflow runs."""
        self.start_workflows()

    def start_workflows(self) -> Executor:
        """Start the workflow executor and the trigger service (idempotent); the executor
        is the server's ``appbook_workflow_executor`` setting (handlers wake it for new runs)."""
        if self.workflow_executor is None:
            config = self.engine_config()
            kind = cast(type[Executor], self.workflow_executor_class)
            executor = kind(config, processes=self.workflow_processes, lease=self.run_lease)
            executor.start()
            self.workflow_executor = executor
            if self.serverapp is not None:
                self.serverapp.web_app.settings["appbook_workflow_executor"] = executor
            if self.triggers and self.engine is not None:
                self.trigger_service = TriggerService(
                    self.engine.as_user("appbook-triggers"),
                    worker_name("serve"),
                    on_started=lambda _runs: executor.wake(),
                )
                self.trigger_service.start()
        return self.workflow_executor

    def _keep_signals(self) -> None:
        from .apps.signals import keep_server_signals

        self._signal_watch = keep_server_signals(self.serverapp)

    async def stop_extension(self) -> None:
        """Close the engine (event bus threads, database pool) and the thread pool."""
        kernels = (
            self.serverapp.web_app.settings.get("appbook_app_kernels") if self.serverapp else None
        )
        if kernels is not None:
            await kernels.close()
        loop = asyncio.get_running_loop()
        if self.trigger_service is not None:
            service, self.trigger_service = self.trigger_service, None
            await loop.run_in_executor(None, service.stop)
        if self.workflow_executor is not None:
            executor, self.workflow_executor = self.workflow_executor, None
            await loop.run_in_executor(None, executor.stop)
        if self.point_reader is not None:
            await self.point_reader.close()
            self.point_reader = None
        for pool in (self.wait_executor, self.executor):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.executor = self.wait_executor = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    @classmethod
    def get_extension_package(cls) -> str:
        """The importable name holding ``_jupyter_server_extension_points``."""
        return "appbook.extension"

    @classmethod
    def serve(cls, argv: list[str], **kwargs: Any) -> None:
        """Start a server with JupyterLab and this extension (the ``appbook serve`` command)."""
        cls.launch_instance(argv=argv, **kwargs)  # type: ignore[no-untyped-call]
