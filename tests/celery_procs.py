"""Real Redis servers and ``appbook worker`` Celery workers in subprocesses, for the Celery
executor's tests and ``bench/workflows.py``.

Each Redis server is our own, on a free loopback port and without persistence (as the
broker runs by default), so a test can restart it without disturbing anyone else. Each
worker runs in its own session, so killing it kills its whole prefork pool.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import redis

T = TypeVar("T")
BIN = Path(sys.executable).parent


def wait_until(check: Callable[[], T], *, timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something true; its value, or AssertionError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on a free loopback port, keeping nothing on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A client of database 0."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=2)

    def start(self) -> None:
        """Start it and wait until it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.folder)]
        log = open(self.folder / f"redis-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(self._answers, timeout=20, what=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Stop it; whatever it held is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port, empty."""
        self.stop()
        self.start()


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    """A fresh Redis server, stopped afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Worker:
    """One ``appbook worker`` (or ``celery -A … worker``) process and its pool."""

    def __init__(self, args: list[str], env: Mapping[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                args,
                env=dict(env),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: killing it kills its pool
            )

    @property
    def pid(self) -> int:
        """The main process (also its process group)."""
        return self.proc.pid

    def output(self) -> str:
        """What it wrote so far."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        """Wait until it consumes (AssertionError with its output if it exits first)."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            return " ready." in self.output()

        wait_until(ready, timeout=timeout, what=f"worker {self.pid} to be ready", every=0.2)

    def kill(self) -> None:
        """SIGKILL it and its pool at once, as a crash would."""
        self._signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it takes too long."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self._signal(signal.SIGKILL)  # also any pool process left behind
        self.proc.wait()

    def _signal(self, sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def worker_env(data_env: Mapping[str, str], redis_url: str, **extra: Any) -> dict[str, str]:
    """The environment of a worker: ours, the data layer's variables, the broker."""
    env = {**os.environ, **data_env, "APPBOOK_REDIS_URL": redis_url}
    env.update({k: str(v) for k, v in extra.items()})
    return env


@contextmanager
def celery_workers(
    count: int,
    env: Mapping[str, str],
    folder: Path,
    *,
    concurrency: int = 1,
    ready: bool = True,
) -> Iterator[list[Worker]]:
    """``count`` ``appbook worker`` processes, each with ``concurrency`` pool processes,
    ready to consume; all stopped (killed if need be) afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    workers: list[Worker] = []
    try:
        for i in range(count):
            name = f"w{i}-{os.getpid()}-{time.monotonic_ns()}@127.0.0.1"
            args = [str(BIN / "appbook"), "worker", f"--concurrency={concurrency}"]
            args += ["--loglevel=info", f"--hostname={name}"]
            workers.append(Worker(args, env, folder / f"worker-{len(workers)}.log", folder))
        if ready:
            for worker in workers:
                worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()
