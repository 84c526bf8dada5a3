"""papermill's notebook client and engine on a kernel lent by a :class:`KernelPool`.

nbclient's ``NotebookClient`` ignores a ``kc`` given to its constructor and would build and
wait for a new client (about 200 ms). :class:`PooledNotebookClient` is given the pool's
kernel manager as ``km`` (so it does not own, start or shut down the kernel) and sets
``self.kc`` to the pool's ready client before ``async_setup_kernel``, which then skips both
starts (nbclient 0.10 and 0.11 only start what is missing); the two start methods are
overridden to fail loudly should a later nbclient call them anyway. Everything runs on the
pool's event loop, where the kernel's sockets live.

Two things are added to papermill's ``execute``. Before the first cell, a *begin* snippet
(the run context, see :mod:`.workflow`) runs as a silent request. And ``notebook_timeout``
bounds the whole notebook: when it passes, the cell that is running gets a ``TimeoutError``
output, execution stops, and the kernel is killed (it serves nobody after this notebook
anyway); papermill then marks that cell and raises as for any failure. A kernel that dies
mid-cell is reported the same way, as ``DeadKernelError``, and so is a ``stop`` event set
while a cell runs (its workflow run was cancelled), as ``Cancelled``.

This module imports papermill, so papermill's entry point names the small
:class:`appbook.kernels.papermill_engine.AppbookEngine` instead, which imports it on use.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import nbformat
from nbclient.exceptions import CellExecutionError, DeadKernelError
from nbclient.util import run_hook
from nbformat import NotebookNode
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import Engine
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

from .pool import KernelPool, PooledKernel, default_pool

CANCEL_GRACE = 5.0  # seconds a cell may take to unwind once its notebook timed out
STOP_POLL = 0.25  # how often a running cell looks at its ``stop`` event


class _Stopped(Exception):
    """The running cell cannot finish: its notebook timed out, or its kernel died."""

    def __init__(self, ename: str, evalue: str, detail: str) -> None:
        super().__init__(f"{ename}: {evalue}")
        self.output = nbformat.v4.new_output(  # type: ignore[no-untyped-call]
            "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}", detail]
        )


class PooledNotebookClient(PapermillNotebookClient):  # type: ignore[misc]
    """papermill's notebook client on a kernel lent by a :class:`KernelPool`."""

    def __init__(
        self,
        nb_man: Any,
        kernel: PooledKernel,
        *,
        begin: str = "",
        notebook_timeout: float | None = None,
        stop: threading.Event | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(nb_man, km=kernel.km, **kw)
        self.kc = kernel.kc  # set after __init__, which resets it; async_setup_kernel keeps it
        self.kernel = kernel
        self.begin = begin
        self.notebook_timeout = notebook_timeout
        self.stop = stop
        self.timed_out = False
        self.stopped = False  # by ``stop``
        self.kernel_died = False

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        raise RuntimeError("a pooled notebook client never starts a kernel")

    async def async_start_new_kernel_client(self) -> Any:
        raise RuntimeError("a pooled notebook client never starts a kernel client")

    async def async_execute_pooled(self) -> NotebookNode:
        """papermill's ``execute`` (cells, callbacks, metadata) on the pooled kernel."""
        self.reset_execution_trackers()
        async with self.async_setup_kernel():
            await run_hook(self.on_notebook_start, notebook=self.nb)
            if self.begin:
                await self._run_begin()
            await self._execute_cells()
            # Asked for when the kernel became ready: no round trip now.
            self.nb.metadata["language_info"] = self.kernel.language_info
            self.set_widgets_metadata()
        nb: NotebookNode = self.nb
        return nb

    async def _run_begin(self) -> None:
        reply = await self.kc.execute(
            self.begin, silent=True, store_history=False, reply=True, timeout=60
        )
        content = reply["content"]
        if content.get("status") != "ok":
            raise RuntimeError(
                f"the run context could not be set in the kernel: "
                f"{content.get('ename')}: {content.get('evalue')}"
            )

    async def _execute_cells(self) -> None:
        """papermill's ``papermill_execute_cells``, with the notebook's deadline."""
        deadline = time.monotonic() + self.notebook_timeout if self.notebook_timeout else None
        for index, cell in enumerate(self.nb.cells):
            try:
                self.nb_man.cell_start(cell, index)
                await self._execute_cell(cell, index, deadline)
            except CellExecutionError as ex:
                self.nb_man.cell_exception(self.nb.cells[index], cell_index=index, exception=ex)
                break
            except _Stopped as stop:
                self.nb.cells[index].outputs.append(stop.output)
                self.nb_man.cell_exception(self.nb.cells[index], cell_index=index, exception=stop)
                break
            finally:
                self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)

    async def _execute_cell(self, cell: NotebookNode, index: int, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() >= deadline and _runs(cell):
            raise self._timeout()
        if self.stop is not None and self.stop.is_set() and _runs(cell):
            raise self._cancelled()
        task = asyncio.ensure_future(self.async_execute_cell(cell, index))
        done = await self._wait(task, deadline)
        if done:
            try:
                task.result()
            except DeadKernelError:
                self.kernel_died = True
                raise _Stopped(
                    "DeadKernelError",
                    "the kernel died while this cell ran",
                    "It exited or was killed (out of memory?) before the cell finished.",
                ) from None
            return
        if self.stop is not None and self.stop.is_set():
            self.stopped = True
        else:
            self.timed_out = True
        # nbclient unwinds a cell whose reply poll is cancelled (as when its kernel dies).
        poll = self.task_poll_for_reply
        if poll is not None and not poll.done():
            poll.cancel()
        else:
            task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_GRACE)
        if not task.done():
            task.cancel()
        elif not task.cancelled():
            task.exception()  # retrieved: it is the cancellation we caused
        raise self._cancelled() if self.stopped else self._timeout()

    async def _wait(self, task: asyncio.Future[Any], deadline: float | None) -> bool:
        """Wait for the cell until ``deadline`` or ``stop``; whether it finished."""
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self.stop is not None:
                left = STOP_POLL if left is None else min(left, STOP_POLL)
            done, _ = await asyncio.wait({task}, timeout=left)
            if done:
                return True
            if self.stop is not None and self.stop.is_set():
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def _cancelled(self) -> _Stopped:
        self.stopped = True
        return _Stopped(
            "Cancelled",
            "the run was cancelled",
            "The workflow run was cancelled while this cell ran; its kernel was stopped.",
        )

    def _timeout(self) -> _Stopped:
        seconds = f"{self.notebook_timeout:g}"
        return _Stopped(
            "TimeoutError",
            f"timed out after {seconds} s",
            f"The notebook ran longer than its step's timeout ({seconds} s); "
            "this cell was running, and its kernel was stopped.",
        )


def _runs(cell: NotebookNode) -> bool:
    return bool(cell.cell_type == "code" and cell.source.strip())


class PooledEngine(Engine):  # type: ignore[misc]
    """papermill's nbclient engine on a pooled kernel (see the module docstring).

    Extra keyword arguments of ``papermill.execute_notebook``: ``pool`` (a
    :class:`KernelPool`; default :func:`default_pool`), ``begin`` (code run silently before
    the first cell), ``notebook_timeout`` (seconds for the whole notebook), ``metadata``
    (merged into the notebook's ``appbook`` metadata) and ``input_label`` (recorded as the
    input path instead of a temporary file's), ``stop`` (a :class:`threading.Event`: set, it
    stops the notebook at the cell that runs)."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: float = 60,
        execution_timeout: float | None = None,
        pool: KernelPool | None = None,
        begin: str = "",
        notebook_timeout: float | None = None,
        metadata: dict[str, Any] | None = None,
        input_label: str | None = None,
        stop: threading.Event | None = None,
        **kwargs: Any,
    ) -> NotebookNode:
        pool = pool if pool is not None else default_pool()
        # The same argument handling as papermill's NBClientEngine.
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        if input_label is not None:
            nb_man.nb.metadata.papermill["input_path"] = input_label
            nb_man.nb.metadata.papermill["output_path"] = None
        run = _Run(pool, nb_man, begin, notebook_timeout, dict(metadata or {}), final_kwargs, stop)
        return pool.run(run.execute(float(start_timeout)))


@dataclass
class _Run:
    pool: KernelPool
    nb_man: Any
    begin: str
    notebook_timeout: float | None
    metadata: dict[str, Any]
    client_kwargs: dict[str, Any]
    stop: threading.Event | None = None

    async def execute(self, start_timeout: float) -> NotebookNode:
        began = time.monotonic()
        try:
            kernel = await asyncio.wait_for(self.pool.atake(), start_timeout)
        except TimeoutError:
            raise RuntimeError(f"no kernel was ready within {start_timeout:g} s") from None
        taken = time.monotonic() - began
        kernel_info = {"warm": kernel.warm, "take_seconds": round(taken, 4)}
        self.nb_man.nb.metadata["appbook"] = {**self.metadata, "kernel": kernel_info}
        client: PooledNotebookClient | None = None
        try:
            client = PooledNotebookClient(
                self.nb_man,
                kernel,
                begin=self.begin,
                notebook_timeout=self.notebook_timeout,
                stop=self.stop,
                **self.client_kwargs,
            )
            nb: NotebookNode = await client.async_execute_pooled()
        finally:
            stuck = client is None or client.timed_out or client.stopped or client.kernel_died
            await self.pool.arelease(kernel, kill=stuck)
        if client.timed_out:
            nb.metadata["appbook"]["timed_out"] = self.notebook_timeout
        if client.stopped:
            nb.metadata["appbook"]["cancelled"] = True
        return nb
