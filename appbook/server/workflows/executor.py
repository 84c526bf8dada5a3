"""Executors: who advances workflow runs, and where.

:class:`Executor` is the interface the server (``appbook serve``) and ``appbook worker``
drive: ``start()``, ``wake()`` (a run was just queued: look now rather than at the next
poll) and ``stop()``. The server picks one through the ``AppbookApp.executor_class``
trait, a dotted name:

- :class:`LocalExecutor` (default): a bounded pool of worker *processes* on this machine.
  Step code (notebooks, scripts) never runs inside the server process, so a runaway step
  cannot stall the API; a child that dies (killed, out of memory) is started again, and the
  run it held is recovered by the next claim once its lease runs out.
- ``appbook.server.workflows.celery_executor.CeleryExecutor``: the server only dispatches
  due runs to Celery workers over Redis (``appbook worker``).
- :class:`NoExecutor`: runs wait until some other process (``appbook worker``) takes them.

The database is the source of truth in every case: a run is claimed under a lease
(:meth:`Runs.claim`), so executors may overlap (two servers, a server and a worker) safely.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from .runs import LEASE_SECONDS

if TYPE_CHECKING:
    from ..config import EngineConfig

log = logging.getLogger(__name__)


class Executor:
    """Advances queued and due runs; the base does nothing (see :class:`NoExecutor`)."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        processes: int = 2,
        lease: float = LEASE_SECONDS,
        poll: float = 0.5,
    ) -> None:
        self.config = config
        self.processes = processes
        self.lease = lease
        self.poll = poll

    def start(self) -> None:
        """Begin taking runs."""

    def wake(self) -> None:
        """A run was queued or became due: look for work now."""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking runs; a step under way may finish within ``timeout`` seconds."""


class NoExecutor(Executor):
    """Runs stay queued for another process (``appbook worker``) to take."""


class LocalExecutor(Executor):
    """``processes`` worker processes (``python -m appbook.server.workflows.local_worker``)
    on this machine, each looping claim → advance, restarted if they die.

    Children read their configuration from ``APPBOOK_*`` variables, and a byte on their
    standard input wakes them; when the parent goes away their input closes and they stop,
    so no worker outlives its server.
    """

    def __init__(self, config: EngineConfig, **options: Any) -> None:
        super().__init__(config, **options)
        self._children: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    def start(self) -> None:
        """Start the children and a supervisor that replaces any that dies."""
        with self._lock:
            self._children = [self._spawn() for _ in range(self.processes)]
        self._supervisor = threading.Thread(
            target=self._supervise, name="appbook-executor", daemon=True
        )
        self._supervisor.start()
        log.info("Appbook local executor: %d worker processes", self.processes)

    @property
    def pids(self) -> list[int]:
        """Process ids of the live children (tests kill them)."""
        with self._lock:
            return [c.pid for c in self._children if c.poll() is None]

    def wake(self) -> None:
        """Tell every child to look for due runs now."""
        with self._lock:
            children = list(self._children)
        for child in children:
            _send(child, b"\n")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask children to stop after their current step; kill those still running after
        ``timeout`` seconds (their runs are recovered by the next claim)."""
        self._stopping.set()
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            _send(child, b"stop\n")
        for child in children:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("workflow worker %s did not stop in %ss: killed", child.pid, timeout)
                child.kill()
                child.wait()
        if self._supervisor is not None:
            self._supervisor.join()

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            **self.config.environment(),
            "APPBOOK_RUN_LEASE": str(self.lease),
            "APPBOOK_WORKER_POLL": str(self.poll),
        }
        return subprocess.Popen(
            [sys.executable, "-m", "appbook.server.workflows.local_worker"],
            stdin=subprocess.PIPE,
            env=env,
        )

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                for i, child in enumerate(self._children):
                    code = child.poll()
                    if code is None or self._stopping.is_set():
                        continue
                    log.warning(
                        "workflow worker %s exited with %s: starting another", child.pid, code
                    )
                    self._children[i] = self._spawn()
                    self.restarts += 1


def _send(child: subprocess.Popen[bytes], data: bytes) -> None:
    if child.stdin is None:
        return
    try:
        child.stdin.write(data)
        child.stdin.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass  # it is gone; the supervisor replaces it
