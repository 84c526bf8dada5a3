"""Warm kernels for workflow notebook steps: started ahead, each used for one notebook.

Starting an IPython kernel and waiting until it answers costs about half a second (more on a
busy machine), and a notebook that imports the engine and pandas pays as much again. A
:class:`KernelPool` keeps ``size`` kernels started, connected (an ``AsyncKernelClient``
whose channels are open and that has had its ``kernel_info`` reply) and with
:attr:`~KernelPool.preload` modules imported, so a notebook step starts executing cells at
once. Each kernel serves **one** notebook and is then killed (its outputs are in, nothing of
it is kept): no variable, module state or file of one run is seen by the next. Taking a
kernel starts a replacement in the background, :attr:`~KernelPool.fill_delay` later (so the
next steps of a workflow do not share the CPU with a booting kernel); when none is ready,
the take starts one of its own at once and gets whichever start ends first: a *cold* take,
counted in :attr:`~KernelPool.stats`.

Every kernel runs in its own temporary folder (its working directory, with its IPC sockets
beside it), removed when the kernel is shut down (folders of a pool whose process was killed
are swept when the next pool starts), and gets :attr:`~KernelPool.environment` (the
``APPBOOK_*`` variables of the data layer) on top of this process's environment.

The pool owns an event loop in a daemon thread: kernel managers, clients and the notebook
clients that use them all live on that loop (zmq sockets are bound to the loop they first
ran on). Synchronous callers use :meth:`~KernelPool.take`, :meth:`~KernelPool.release` and
:meth:`~KernelPool.run`; coroutines already on the loop use the ``a``-prefixed methods.
:func:`default_pool` is the process-wide pool of the process that runs steps, created on
first use and closed at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

log = logging.getLogger(__name__)
T = TypeVar("T")

# IPython's history database is a SQLite file shared by every kernel of a user; concurrent
# kernels lock each other out of it (nbclient passes the same option for the same reason).
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:"]
RETRY_START = (1.0, 30.0)  # a failed refill is retried after 1 s, doubling up to 30 s
RUN_CONTEXT = "appbook.kernels.workflow"
FOLDER_PREFIX = "appbook-kernel-"  # + the pool's pid: folders of a killed process are swept


class PoolClosed(RuntimeError):
    """The pool was closed: it hands out no more kernels."""


@dataclass(eq=False)  # compared and hashed by identity: one object per kernel
class PooledKernel:
    """A started kernel with its ready client, lent for one notebook."""

    km: AsyncKernelManager
    kc: AsyncKernelClient
    workdir: Path  # the kernel's own folder: ``run/`` is its working directory
    language_info: dict[str, Any]
    warm: bool = False  # ready in the pool when taken (False: the take waited for a start)
    ready_at: float = 0.0  # time.monotonic() when it became ready

    @property
    def cwd(self) -> Path:
        """The kernel's working directory."""
        return self.workdir / "run"


@dataclass
class PoolStats:
    """What the pool did so far."""

    warm: int = 0  # takes served by a ready kernel
    cold: int = 0  # takes that had to wait for a kernel start
    started: int = 0  # kernels started
    failed: int = 0  # starts that failed
    start_seconds: list[float] = field(default_factory=list)  # of the last 100 starts


class KernelPool(LoggingConfigurable):
    """Kernels started ahead, handed out once each (see the module docstring)."""

    size = Integer(
        help="How many kernels are kept started and ready. 0 starts one per notebook. "
        "Default: $APPBOOK_KERNEL_POOL_SIZE, else 2.",
    ).tag(config=True)

    kernel_name = Unicode("python3", help="The kernel spec pool kernels are started from.").tag(
        config=True
    )

    preload = List(
        Unicode(),
        help="Modules imported in each pool kernel while it waits (not in kernels started "
        "for a take), so notebooks that import them start sooner; no names are bound in the "
        "notebook's namespace. Default: $APPBOOK_KERNEL_PRELOAD (comma-separated; empty for "
        "none), else appbook.server.engine and pandas.",
    ).tag(config=True)

    environment = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Variables set in every kernel's environment on top of this process's: the "
        "APPBOOK_* variables of the data layer. Default: EngineConfig().environment().",
    ).tag(config=True)

    startup_timeout = Float(
        60.0, help="Seconds a kernel may take to start and answer before it counts as failed."
    ).tag(config=True)

    fill_delay = Float(
        1.0,
        help="Seconds after a take before its replacement starts: a kernel booting takes a "
        "CPU for about a second, which the next steps of a workflow, run back to back, should "
        "not compete with. A take that finds no ready kernel starts one at once.",
    ).tag(config=True)

    graceful_shutdown = Bool(
        False,
        help="Ask a kernel that served its notebook to shut down (its atexit hooks run), "
        "rather than kill it (faster, no exit-time work while the next step runs; its "
        "outputs are in and its folder is removed either way).",
    ).tag(config=True)

    @default("size")
    def _default_size(self) -> int:
        return int(os.environ.get("APPBOOK_KERNEL_POOL_SIZE") or 2)

    @default("preload")
    def _default_preload(self) -> list[str]:
        env = os.environ.get("APPBOOK_KERNEL_PRELOAD")
        if env is None:
            return ["appbook.server.engine", "pandas"]
        return [name.strip() for name in env.split(",") if name.strip()]

    @default("environment")
    def _default_environment(self) -> dict[str, str]:
        from ..server.config import EngineConfig

        return EngineConfig().environment()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stats = PoolStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._context: zmq.asyncio.Context | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Loop-thread state only:
        self._ready: collections.deque[PooledKernel] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[PooledKernel]] = collections.deque()
        self._starting: set[asyncio.Task[None]] = set()
        self._refilling = 0  # of _starting: refills (preloading) rather than cold starts
        self._lent: set[PooledKernel] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        self._backoff = 0.0
        self._ready_changed: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None  # set while takes wait: refills start now

    # -- the loop ---------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The pool's event loop (started on first use, with the refill)."""
        with self._lock:
            if self._closed:
                raise PoolClosed("the kernel pool is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="appbook-kernel-pool", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
                loop.call_soon_threadsafe(self._fill)
                sweep_folders()
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the pool's loop and wait for its result (from another
        thread: the loop's own thread would wait on itself forever)."""
        try:
            loop = self.loop
            if threading.current_thread() is self._thread:
                raise RuntimeError("KernelPool.run was called on the pool's own loop; await it")
        except BaseException:
            coroutine.close()  # never awaited: say nothing about it
            raise
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    def start(self) -> KernelPool:
        """Begin filling the pool now rather than at the first take."""
        self.loop  # noqa: B018  (starting the loop schedules the first fill)
        return self

    # -- taking and giving back -------------------------------------------------------
    def take(self, timeout: float | None = None) -> PooledKernel:
        """A started kernel with its ready client, for one notebook (see :meth:`atake`)."""
        return self.run(self.atake(), timeout)

    async def atake(self) -> PooledKernel:
        """A ready kernel if there is one, else the first one to finish starting (counted as
        cold). The pool starts a replacement either way. Give it back with :meth:`release`."""
        if self._closed:
            raise PoolClosed("the kernel pool is closed")
        while self._ready:
            kernel = self._ready.popleft()
            if await kernel.km.is_alive():
                kernel.warm = True
                self.stats.warm += 1
                self._lent.add(kernel)
                self._fill(self.fill_delay)
                return kernel
            log.warning("a pooled kernel died while it waited; starting another")
            self._stop(kernel, now=True)
        self.stats.cold += 1
        waiter: asyncio.Future[PooledKernel] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._hurry_event().set()
        # Every waiter gets a start of its own (without the preloads, which it may not need);
        # whichever start ends first serves the first waiter.
        if len(self._starting) - self._refilling < len(self._waiters):
            self._spawn(preload=False)
        self._fill()
        try:
            kernel = await waiter
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        self._lent.add(kernel)
        return kernel

    def release(self, kernel: PooledKernel, *, kill: bool = False) -> None:
        """Shut a lent kernel down in the background (it never serves again); ``kill``
        kills it even under :attr:`graceful_shutdown` (a kernel that hangs or died)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._stop, kernel, kill)

    async def arelease(self, kernel: PooledKernel, *, kill: bool = False) -> None:
        """:meth:`release` from the pool's loop."""
        self._stop(kernel, kill)

    # -- state -------------------------------------------------------------------------
    @property
    def ready(self) -> int:
        """How many kernels are ready now."""
        return len(self._ready)

    def wait_ready(self, count: int | None = None, timeout: float = 120.0) -> bool:
        """Wait until ``count`` (default: ``size``) kernels are ready; whether they are."""
        want = self.size if count is None else count
        deadline = time.monotonic() + timeout

        async def wait() -> bool:
            while len(self._ready) < want:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                event = self._event()
                event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(left, 1.0))
            return True

        return self.run(wait())

    def _event(self) -> asyncio.Event:
        if self._ready_changed is None:
            self._ready_changed = asyncio.Event()
        return self._ready_changed

    def _hurry_event(self) -> asyncio.Event:
        if self._hurry is None:
            self._hurry = asyncio.Event()
        return self._hurry

    # -- starting ---------------------------------------------------------------------
    def _fill(self, delay: float = 0.0) -> None:
        """Start kernels, after ``delay`` seconds, until ready + refills under way make
        ``size`` (on the loop)."""
        if self._closed:
            return
        while len(self._ready) + self._refilling < self.size:
            self._spawn(preload=True, delay=delay)

    def _spawn(self, *, preload: bool, delay: float = 0.0) -> None:
        task = asyncio.ensure_future(self._start_one(preload, delay))
        self._starting.add(task)
        if preload:
            self._refilling += 1

        def done(finished: asyncio.Task[None]) -> None:
            self._starting.discard(finished)
            if preload:
                self._refilling -= 1

        task.add_done_callback(done)

    async def _start_one(self, preload: bool, delay: float = 0.0) -> None:
        pause = max(delay, self._backoff) if preload else 0.0
        if pause > 0 and not self._waiters:
            hurry = self._hurry_event()
            with contextlib.suppress(TimeoutError):  # a take waiting cuts the pause short
                await asyncio.wait_for(hurry.wait(), pause)
        if self._closed:
            return
        try:
            kernel = await self._start(preload)
        except Exception as exc:
            self.stats.failed += 1
            log.error("a pool kernel failed to start: %s", exc)
            if preload:  # a refill: try again later, not in a tight loop
                low, high = RETRY_START
                self._backoff = min(high, max(low, self._backoff * 2))
            # A take that no other start under way can serve hears why (this task is still
            # counted in _starting).
            if len(self._waiters) > len(self._starting) - 1:
                waiter = self._next_waiter()
                if waiter is not None:
                    waiter.set_exception(exc)
            return
        self._backoff = 0.0
        if self._closed:
            self._stop(kernel, now=True)
            return
        waiter = self._next_waiter()
        if waiter is not None:
            waiter.set_result(kernel)
        else:
            self._ready.append(kernel)
            self._event().set()
        if preload:
            # This refill is done: if it served a waiter, the pool is one short again.
            asyncio.get_running_loop().call_soon(self._fill)

    def _next_waiter(self) -> asyncio.Future[PooledKernel] | None:
        found = None
        while self._waiters and found is None:
            waiter = self._waiters.popleft()
            if not waiter.done():
                found = waiter
        if not self._waiters:
            self._hurry_event().clear()
        return found

    async def _start(self, preload: bool) -> PooledKernel:
        """Start a kernel, connect a client, wait until it answers, get its language info
        and (for refills) import the preload modules."""
        began = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        (workdir / "run").mkdir()
        if self._context is None:
            self._context = zmq.asyncio.Context()
        km = AsyncKernelManager(
            kernel_name=self.kernel_name,
            transport="ipc",  # local sockets in the kernel's own 0700 folder, no TCP ports
            ip=str(workdir / "ipc"),
            connection_file=str(workdir / "kernel.json"),
            context=self._context,
        )
        env = {**os.environ, **self.environment}
        kc: AsyncKernelClient | None = None
        try:
            await km.start_kernel(
                extra_arguments=KERNEL_ARGUMENTS, cwd=str(workdir / "run"), env=env
            )
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=self.startup_timeout)
            kc.allow_stdin = False
            info = await kc.kernel_info(reply=True, timeout=self.startup_timeout)
            if preload:
                await self._preload(kc)
        except BaseException:
            if kc is not None:
                kc.stop_channels()
            await _shutdown(km, workdir, now=True)
            raise
        self.stats.started += 1
        self.stats.start_seconds = [*self.stats.start_seconds[-99:], time.monotonic() - began]
        language = dict(info["content"].get("language_info") or {})
        return PooledKernel(km, kc, workdir, language, ready_at=time.monotonic())

    async def _preload(self, kc: AsyncKernelClient) -> None:
        # __import__ binds no names: the notebook's namespace stays empty. The run context
        # module is imported by every step's first request anyway: do it ahead too.
        code = "\n".join(f"__import__({name!r})" for name in [RUN_CONTEXT, *self.preload])
        reply = await kc.execute(
            code, silent=True, store_history=False, reply=True, timeout=self.startup_timeout
        )
        content = reply["content"]
        if content.get("status") != "ok":
            log.warning(
                "pool kernels could not preload %s: %s: %s",
                ", ".join(self.preload),
                content.get("ename"),
                content.get("evalue"),
            )

    # -- stopping ---------------------------------------------------------------------
    def _stop(self, kernel: PooledKernel, now: bool = False) -> None:
        """Shut ``kernel`` down in a task of its own (on the loop): killed, unless
        :attr:`graceful_shutdown` and not ``now``."""
        now = now or not self.graceful_shutdown
        self._lent.discard(kernel)
        if kernel in self._ready:
            self._ready.remove(kernel)
        kernel.kc.stop_channels()
        task = asyncio.ensure_future(_shutdown(kernel.km, kernel.workdir, now=now))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def close(self, timeout: float = 30.0) -> None:
        """Shut every kernel down (ready, starting, and lent ones), then stop the loop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(timeout), loop).result(timeout + 5)
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.warning("the kernel pool did not close cleanly: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()

    async def _close(self, timeout: float) -> None:
        self._hurry_event().set()  # refills waiting out their delay see the pool closed
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(PoolClosed("the kernel pool is closed"))
        self._waiters.clear()
        if self._starting:  # a start cancelled half-way can leave a process behind
            await asyncio.wait(set(self._starting), timeout=timeout)
        for kernel in [*self._ready, *self._lent]:
            self._stop(kernel, now=True)
        if self._stopping:
            await asyncio.wait(set(self._stopping), timeout=timeout)
        if self._context is not None:
            self._context.destroy(linger=0)
        with contextlib.suppress(RuntimeError):  # at exit it may be gone already
            await asyncio.get_running_loop().shutdown_default_executor()


def sweep_folders(root: str | None = None) -> list[Path]:
    """Remove the kernel folders left by pools whose process was killed (their kernels
    exit by themselves: ipykernel polls its parent); the folders removed."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name[len(FOLDER_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


async def _shutdown(km: AsyncKernelManager, workdir: Path, *, now: bool) -> None:
    try:
        if km.has_kernel:
            await km.shutdown_kernel(now=now)
    except Exception as exc:
        log.warning("a pool kernel did not shut down cleanly: %s", exc)
    finally:
        remove = partial(shutil.rmtree, workdir, ignore_errors=True)
        try:  # off the loop: removing a folder can take milliseconds a step should not wait
            await asyncio.get_running_loop().run_in_executor(None, remove)
        except RuntimeError:  # at exit, executors take no more work
            remove()


_default: KernelPool | None = None
_default_lock = threading.Lock()
_default_pid = 0


def default_pool() -> KernelPool:
    """The process-wide pool (configured from ``APPBOOK_*`` variables), created and started
    on first use and closed at exit. A forked child gets a pool of its own."""
    global _default, _default_pid
    with _default_lock:
        if _default is None or _default_pid != os.getpid():
            _default, _default_pid = KernelPool().start(), os.getpid()
            atexit.register(_default.close)
        return _default


def set_default_pool(pool: KernelPool | None) -> KernelPool | None:
    """Make ``pool`` the process-wide pool (None: the next use creates one); the previous
    one, which the caller closes if it should stop."""
    global _default, _default_pid
    with _default_lock:
        previous, _default, _default_pid = _default, pool, os.getpid()
    return previous


def close_default_pool() -> None:
    """Close the process-wide pool, if one was created (the next use makes a new one)."""
    global _default
    with _default_lock:
        pool, _default = _default, None
    if pool is not None:
        pool.close()
