"""A real ``appbook serve`` in a subprocess, for tests that need the whole server (OpenAPI
conformance, browser tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def service_missing(what: str, why: object) -> None:
    """Skip, or fail when services are required (CI)."""
    message = f"{what} is not reachable: {why}"
    if os.environ.get("APPBOOK_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (APPBOOK_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@dataclass(frozen=True)
class Served:
    """A running server: its address, token and environment (the data layer it uses)."""

    url: str
    token: str
    env: dict[str, str]
    log: Path


def sigint_default() -> None:
    """In the child, before exec: SIGINT back to its default. A suite started in the
    background by a shell inherits SIGINT ignored, and the server would never see Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def appbook_serve(
    folder: Path,
    *,
    token: str,
    publish: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> Iterator[Served]:
    """Publish ``publish`` then run ``appbook serve`` on SQLite in ``folder`` until the block
    ends (SIGINT, then kill after 30 s)."""
    environ = {
        **os.environ,
        "APPBOOK_HOME": str(folder / "home"),
        "JUPYTER_RUNTIME_DIR": str(folder / "rt"),
        **(env or {}),
    }
    for name in ("APPBOOK_DATABASE_URL", "APPBOOK_REDIS_URL"):
        if name not in (env or {}):
            environ.pop(name, None)
    for path in publish:
        cmd = [sys.executable, "-m", "appbook", "publish", str(path)]
        subprocess.run(cmd, env=environ, check=True, cwd=folder)
    port = free_port()
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appbook",
                "serve",
                "--port",
                str(port),
                f"--IdentityProvider.token={token}",
                *args,
            ],
            cwd=folder,
            env=environ,
            stdin=subprocess.DEVNULL,
            preexec_fn=sigint_default,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base, token, log)
        yield Served(base, token, environ, log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], base: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    request = urllib.request.Request(
        f"{base}/appbook/api/health", headers={"Authorization": f"token {token}"}
    )
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(request, timeout=2).close()
            return
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"appbook serve exited early:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)  # polling a starting server, with a deadline
    pytest.fail(f"appbook serve did not answer in 60 s:\n{log.read_text()[-3000:]}")
