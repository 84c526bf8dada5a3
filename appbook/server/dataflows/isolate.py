"""Run a dataflow in a child process with a time and a memory limit.

The REST API sends dataflows with ``script`` steps here, so component code never runs in
the server process: a runaway script is stopped at its limit and the API keeps serving. The
child (:mod:`.child`) is a plain ``python -m`` process fed JSON on stdin, the simplest
thing that is robust (no pool to poison, nothing shared but the database). Its writes are
one transaction: a child stopped mid-run writes nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import AppbookError, Conflict, NotFound, QueryError, ValidationError
from ..expressions import ExpressionError
from .context import DataflowFailed
from .runner import DataflowResult

if TYPE_CHECKING:
    from ..engine import Appbook

SECONDS = 300.0  # default wall-clock limit of one run
MEMORY = 2 * 1024**3  # default address-space limit of the child, bytes
CLASSES: dict[str, type[AppbookError]] = {
    c.__name__: c
    for c in (ValidationError, NotFound, Conflict, QueryError, ExpressionError, DataflowFailed)
}


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
    try:
        done = subprocess.run(
            [sys.executable, "-m", "appbook.server.dataflows.child"],
            input=json.dumps(request, default=str),
            capture_output=True,
            text=True,
            timeout=seconds,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise _stopped(
            app, component, name, started, wall, f"ran over its time limit of {seconds:g} s"
        ) from None
    reply = _reply(done.stdout)
    if reply is None:
        why = f"its process ended with {_exit(done.returncode)}"
        raise _stopped(app, component, name, started, wall, why)
    if reply["ok"]:
        return DataflowResult(**reply["result"])
    raise _rebuilt(reply["error"], memory)


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
