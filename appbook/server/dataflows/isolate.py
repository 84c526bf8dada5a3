"""Run a dataflow in a child process with a time and a memory limit.

The REST API sends dataflows with ``script`` steps here, so component code never runs in
the server process: a runaway script is stopped at its limit and the API keeps serving. The
child (:mod:`.child`) is a plain ``python -m`` process fed JSON on stdin, the simplest
thing that is robust (no pool to poison, nothing shared but the database). Its writes are
one transaction: a child stopped mid-run writes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import (
    AppbookError,
    Conflict,
    DataflowFailed,
    Forbidden,
    NotFound,
    OutboundError,
    OutboundRefused,
    PayloadTooLarge,
    QueryError,
    ServiceUnavailable,
    ValidationError,
)
from ..expressions import ExpressionError
from .runner import DataflowResult

if TYPE_CHECKING:
    from ..engine import Appbook

log = logging.getLogger(__name__)
SECONDS = 300.0  # default wall-clock limit of one run
MEMORY = 2 * 1024**3  # default address-space limit of the child, bytes
STARTUP = 120.0  # how long the child may take to start (imports, connecting), not counted
# The errors a child's run comes back as, by class name: each keeps its own HTTP status
# (a refused outside call is 403, a failed one 502, a database that is down 503).
ERRORS: tuple[type[AppbookError], ...] = (
    ValidationError,
    NotFound,
    Conflict,
    Forbidden,
    QueryError,
    ExpressionError,
    DataflowFailed,
    OutboundRefused,
    OutboundError,
    PayloadTooLarge,
    ServiceUnavailable,
)
CLASSES: dict[str, type[AppbookError]] = {c.__name__: c for c in ERRORS}


def run_isolated(
    app: Appbook,
    component: str,
    name: str,
    *,
    inputs: dict[str, Any] | None = None,
    record: int | dict[str, Any] | None = None,
    seconds: float = SECONDS,
    memory: int = MEMORY,
    via: str = "rest",
) -> DataflowResult:
    """Run the dataflow in a child process as ``app``'s actor; its result, or its error
    rebuilt with the same class (DataflowFailed when the child was stopped)."""
    request = {
        "actor": app.actor,
        "component": component,
        "name": name,
        "inputs": inputs,
        "record": record,
        "seconds": seconds,
        "memory": memory,
        "via": via,
    }
    env = {**os.environ, **app.config.environment()}
    started, wall = time.time(), time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "appbook.server.dataflows.child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        # one line, not closed here: communicate() closes it (and flushes it first)
        child.stdin.write(json.dumps(request, default=str).encode() + b"\n")
        child.stdin.flush()
        ready = _ready(child, STARTUP)
        try:
            stdout, stderr = child.communicate(timeout=seconds if ready else 0.1)
        except subprocess.TimeoutExpired:
            why = f"ran over its time limit of {seconds:g} s" if ready else "did not start"
            raise _stopped(app, component, name, started, wall, why) from None
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    reply = _reply(stdout.decode("utf-8", "replace"))
    if reply is None:
        why = f"its process ended with {_exit(child.returncode)}"
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-20:]
        log.warning("dataflow %s.%s: child %s:\n%s", component, name, why, "\n".join(tail))
        raise _stopped(app, component, name, started, wall, why)
    if reply["ok"]:
        return DataflowResult(**reply["result"])
    raise _rebuilt(reply["error"], memory)


def _ready(child: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether the child said ``ready`` within ``timeout`` (its start is not the run's).
    Read byte by byte from the pipe itself, so nothing after the line is taken from
    ``communicate``."""
    assert child.stdout is not None
    fd, line, deadline = child.stdout.fileno(), b"", time.monotonic() + timeout
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return False
        byte = os.read(fd, 1)
        if not byte:
            return False
        line += byte
    return line.strip() == b"ready"


def _reply(stdout: str) -> dict[str, Any] | None:
    lines = stdout.strip().splitlines()
    try:
        reply = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None
    return reply if isinstance(reply, dict) and "ok" in reply else None


def _exit(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit status {code}"


def _stopped(
    app: Appbook, component: str, name: str, started: float, wall: float, why: str
) -> DataflowFailed:
    from .log import log_run

    message = f"dataflow {component}.{name} {why} and was stopped; nothing was written"
    log_run(app, component, name, "rest", started, wall, [], message)
    return DataflowFailed(message)


def _rebuilt(error: dict[str, Any], memory: int) -> AppbookError:
    cls = CLASSES.get(error.get("class", ""), DataflowFailed)
    message = str(error.get("message", "the dataflow failed"))
    if error.get("class") == "MemoryError":
        message = f"the dataflow ran out of memory (its limit is {memory // 1024**2} MiB)"
    rebuilt = cls.__new__(cls)
    AppbookError.__init__(rebuilt, message)
    if isinstance(rebuilt, ValidationError):
        rebuilt.errors = dict(error.get("fields") or {})
    if isinstance(rebuilt, Conflict):
        fields = error.get("fields") or {}
        rebuilt.field = next(iter(fields), None)
    return rebuilt
