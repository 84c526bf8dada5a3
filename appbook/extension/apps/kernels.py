"""Kernels for apps: the server's own kernel manager, plus a pool of preheated kernels.

Voilà's handler asks its ``kernel_manager`` for ``notebook_data``, ``get_pool_size`` and
``get_rendered_notebook`` (voila/handler.py); standalone Voilà gets them by replacing the
whole server's kernel manager, which a server extension cannot do without changing every
JupyterLab kernel. :class:`AppKernels` is what the app handler sees instead: it delegates to
the server's manager and adds a pool of kernels that have already run the app notebook up to
``wait_for_request()`` (imports, data layer connection), with their HTML rendered.

Every kernel started here is marked as an app kernel (``appbook_app = True`` on its kernel
manager), which the WebSocket guard (:mod:`.guard`) reads to refuse code execution.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from datetime import UTC, datetime
from typing import Any

from jupyter_core.utils import ensure_async
from voila.configuration import VoilaConfiguration
from voila.notebook_renderer import NotebookRenderer
from voila.utils import ENV_VARIABLE

from ...kernels.apprun import PREHEAT_VARIABLE

CANCEL_WAIT = 0.5  # seconds the pool's renderings get to unwind at shutdown (then killed)

requested_app: contextvars.ContextVar[str] = contextvars.ContextVar("requested_app", default="")
"""The component the app request being handled is for (set by the app handler)."""


class AppKernels:
    """The server's kernel manager as Voilà's handler expects it, with a preheated pool."""

    def __init__(
        self,
        serverapp: Any,
        voila_configuration: VoilaConfiguration,
        template_paths: list[str],
        contents_manager: Any,
        *,
        pool_size: int,
        page_assets: dict[str, Any] | None = None,
        fill_delay: float = 5.0,
        fill_settle: float = 1.0,
    ) -> None:
        self._km = serverapp.kernel_manager
        self._serverapp = serverapp
        self._voila = voila_configuration
        self._template_paths = template_paths
        self._contents = contents_manager
        self.pool_size = pool_size
        self.fill_delay = fill_delay
        """After a hand-over, the refill starts at most this many seconds later..."""
        self.fill_settle = fill_settle
        """...or as soon as the page has been connected to its kernel this long."""
        self._page_assets = page_assets or {}
        self.notebook_data: dict[str, dict[str, Any]] = {}
        self._pools: dict[tuple[str, str], list[asyncio.Task[dict[str, Any]]]] = {}
        self._culler: asyncio.Future[None] | None = None
        self._settling: set[asyncio.Task[Any]] = set()  # refills waiting for a page
        self.preheated_served = 0
        """Requests answered by a preheated kernel (for tests and logs)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._km, name)

    async def start_kernel(self, **kwargs: Any) -> str:
        """Start a kernel through the server's manager and mark it as an app kernel."""
        kernel_id: str = await ensure_async(self._km.start_kernel(**kwargs))
        self._km.get_kernel(kernel_id).appbook_app = True
        return kernel_id

    def get_kernel(self, kernel_id: str) -> Any:
        """The server's kernel manager of ``kernel_id``."""
        return self._km.get_kernel(kernel_id)

    # -- the pools --------------------------------------------------------------------
    # One pool per app: its kernels have rendered that app's first page already, so a
    # request for it only binds the user. The app a request is for comes from the handler
    # (requested_app), since Voilà's handler only names the notebook.
    def get_pool_size(self, notebook: str) -> int:
        """Preheated kernels ready now for the requested app. Kernels still starting do not
        count: a request then starts its own kernel rather than wait for one whose start
        may fail. An app seen for the first time gets its pool started."""
        key = self._key(notebook)
        if key not in self._pools:
            self.fill(*key)
            return 0
        return self.ready(*key)

    def ready(self, notebook: str, app: str) -> int:
        """How many of ``app``'s preheated kernels are ready (failed starts are dropped)."""
        pool = self._pools.get((notebook, app), [])
        for task in [t for t in pool if t.done() and not _ready(t)]:
            pool.remove(task)
            why = "cancelled" if task.cancelled() else task.exception()
            self._serverapp.log.warning("a preheated app kernel failed to start: %s", why)
        return sum(1 for t in pool if _ready(t))

    def fill(self, notebook: str, app: str, after: str | None = None) -> None:
        """Start kernels for ``app`` until ``pool_size`` are ready or starting; with
        ``after`` (a kernel just handed to a page), once that page has its widgets."""
        pool = self._pools.setdefault((notebook, app), [])
        while len(pool) < self.pool_size:
            pool.append(asyncio.ensure_future(self._preheat(notebook, app, after)))

    def _key(self, notebook: str) -> tuple[str, str]:
        return (notebook, requested_app.get())

    async def get_rendered_notebook(
        self,
        notebook_name: str,
        extra_kernel_env_variables: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[asyncio.Task[Any], list[str], str]:
        """Hand a ready kernel to a request (Voilà's handler then sends it the request)."""
        key = self._key(notebook_name)
        pool = self._pools[key]
        task = next(t for t in pool if _ready(t))
        pool.remove(task)
        content = task.result()
        renderer: NotebookRenderer = content["renderer"]
        renderer.stop_generator = True
        self.preheated_served += 1
        self.fill(*key, after=content["kernel_id"])
        return content["task"], renderer.rendered_cache, content["kernel_id"]

    async def _page_settled(self, kernel_id: str) -> None:
        """Until the page served by ``kernel_id`` has been connected to it ``fill_settle``
        seconds (it has loaded its widgets by then), or ``fill_delay`` seconds at most.

        Preparing the next kernel takes the server's loop for a while (the renderer, the
        kernel's start) and a core for a second or two (the kernel's imports): done while a
        page opens, it holds up the page's requests and its kernel's replies.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.fill_delay
        connected_at = None
        while loop.time() < deadline:
            if connected_at is None and self._km._kernel_connections.get(kernel_id, 0) > 0:
                connected_at = loop.time()
            if connected_at is not None and loop.time() - connected_at >= self.fill_settle:
                return
            await asyncio.sleep(0.1)

    async def _preheat(self, notebook: str, app_name: str, after: str | None) -> dict[str, Any]:
        if after is not None:
            task = asyncio.current_task()
            assert task is not None
            self._settling.add(task)
            try:
                await self._page_settled(after)
            finally:
                self._settling.discard(task)
        app = self._serverapp
        renderer = NotebookRenderer(
            voila_configuration=self._voila,
            traitlet_config=app.config,
            notebook_path=notebook,
            template_paths=self._template_paths,
            config_manager=app.config_manager,
            contents_manager=self._contents,
            base_url=app.base_url,
            kernel_spec_manager=app.kernel_spec_manager,
            # What the app template reads (Voilà's own page configuration lists JupyterLab
            # extensions, which app pages do not load).
            page_config={"baseUrl": app.base_url, "appbook": self._page_assets},
        )
        await renderer.initialize()
        env = {
            **os.environ,
            ENV_VARIABLE.VOILA_PREHEAT: "True",
            ENV_VARIABLE.VOILA_BASE_URL: app.base_url,
            ENV_VARIABLE.VOILA_SERVER_URL: app.base_url,
            ENV_VARIABLE.VOILA_APP_IP: "127.0.0.1",
            ENV_VARIABLE.VOILA_APP_PORT: str(app.port),
            PREHEAT_VARIABLE: app_name,
        }
        kernel_id = await self.start_kernel(
            kernel_name=renderer.notebook.metadata.kernelspec.name, path="", env=env
        )
        self.notebook_data.setdefault(
            notebook, {"template": renderer.template_name, "theme": renderer.theme}
        )
        task = asyncio.ensure_future(
            renderer.generate_content_hybrid(kernel_id, self._km.get_kernel(kernel_id))
        )
        return {"task": task, "renderer": renderer, "kernel_id": kernel_id}

    # -- culling ----------------------------------------------------------------------
    def start_culler(self, idle_seconds: float) -> None:
        """Shut down app kernels that no page has been connected to for ``idle_seconds``.

        A closing tab asks Voilà to stop its kernel, but a crashed browser, a lost network
        or a killed tab never asks; jupyter_server's own culler is server-wide and would
        also stop JupyterLab kernels. Pool kernels wait for a page and are never culled.
        """
        if idle_seconds > 0 and self._culler is None:
            self._culler = asyncio.ensure_future(self._cull_forever(idle_seconds))

    async def _cull_forever(self, idle_seconds: float) -> None:
        while True:
            await asyncio.sleep(max(idle_seconds / 4, 0.5))
            try:
                await self.cull(idle_seconds)
            except Exception:  # keep culling; the next round retries
                self._serverapp.log.exception("culling app kernels failed")

    async def cull(self, idle_seconds: float) -> list[str]:
        """Shut down idle, disconnected app kernels now; their ids."""
        km = self._km
        waiting = {
            t.result()["kernel_id"] for pool in self._pools.values() for t in pool if _ready(t)
        }
        now = datetime.now(UTC)
        culled = []
        for kernel_id in list(km.list_kernel_ids()):
            kernel = km.get_kernel(kernel_id)
            if not getattr(kernel, "appbook_app", False) or kernel_id in waiting:
                continue
            if km._kernel_connections.get(kernel_id, 0) > 0:
                continue
            last = getattr(kernel, "last_activity", None) or now
            if (now - last).total_seconds() >= idle_seconds:
                self._serverapp.log.info("Appbook: shutting down idle app kernel %s", kernel_id)
                await ensure_async(km.shutdown_kernel(kernel_id))
                culled.append(kernel_id)
        return culled

    async def close(self, start_timeout: float = 15) -> None:
        """Stop filling and culling, stop rendering in pool kernels and kill the pool's
        kernels (no page has them yet); kernels serving pages are the server's to shut down
        (its clean-up stops every kernel).

        A preheated kernel is executing the app notebook's cell that waits for a request:
        asked to shut down politely, it would close its sockets under that cell and log a
        traceback for each kernel. It holds nothing of anyone's, so it is killed at once.
        Kernels still starting are awaited rather than cancelled: a start cancelled half-way
        can leave an id that the server's clean-up then fails on, which stops the shutdown.
        """
        if self._culler is not None:
            self._culler.cancel()
            self._culler = None
        for waiting in self._settling:  # no kernel started yet: safe to cancel
            waiting.cancel()
        tasks = [task for pool in self._pools.values() for task in pool]
        self._pools.clear()
        if tasks:
            await asyncio.wait(tasks, timeout=start_timeout)
        # nbclient reports a cancelled cell as a dead kernel, which Voilà logs as an error
        # for every preheated kernel; at shutdown that is expected, not news.
        self._serverapp.log.addFilter(_quiet_stop)
        idle, rendering = [], []
        for task in tasks:
            if _ready(task):
                rendering.append(task.result()["task"])
                rendering[-1].cancel()
                idle.append(task.result()["kernel_id"])
            else:
                task.cancel()
        if rendering:
            await asyncio.wait(rendering, timeout=CANCEL_WAIT)
        for kernel_id in idle:
            if kernel_id in self._km:
                await ensure_async(self._km.shutdown_kernel(kernel_id, now=True))


STOP_NOISE = ("Error at server while executing cell", "Kernel died while waiting for execute")


def _quiet_stop(record: logging.LogRecord) -> bool:
    """Drop what Voilà and nbclient log of the app notebook's waiting cell as its kernel is
    stopped (installed only while the server stops)."""
    return not str(record.msg).startswith(STOP_NOISE)


def _ready(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
