"""``python -m appbook.server.dataflows.child``: run one dataflow in this process, under
limits, for a server that must not run component code itself.

Reads ``{"actor", "component", "name", "inputs", "record", "seconds", "memory"}`` as one
line of JSON on stdin, reaches the data layer through the ``APPBOOK_*`` environment, applies
the limits (``RLIMIT_AS`` for memory, ``RLIMIT_CPU`` as a backstop to the parent's
wall-clock timeout),
writes ``ready`` (the parent's clock for the run starts then, so a slow interpreter start on
a busy machine does not eat the run's time), runs the dataflow (which logs itself) and
writes one JSON line to stdout: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
{"class", "code", "message", ...}}``.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any


def limit(seconds: float, memory: int) -> None:
    """Cap this process's address space, and its CPU time at what it used so far plus
    ``seconds``."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(usage.ru_utime + usage.ru_stime + seconds) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))


def main() -> int:
    """Run the request read from stdin; 0 whether the dataflow succeeded or failed."""
    request: dict[str, Any] = json.loads(sys.stdin.readline())
    from ..config import EngineConfig
    from ..engine import Appbook
    from ..errors import AppbookError
    from .runner import run

    app = Appbook(EngineConfig(), actor=request["actor"])
    limit(float(request["seconds"]), int(request["memory"]))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        result = run(
            app,
            request["component"],
            request["name"],
            inputs=request.get("inputs"),
            record=request.get("record"),
            via=request.get("via", "rest"),
        )
        reply: dict[str, Any] = {"ok": True, "result": result.to_dict()}
    except AppbookError as exc:
        reply = {"ok": False, "error": {"class": type(exc).__name__, **exc.to_dict()}}
    except MemoryError:
        reply = {"ok": False, "error": {"class": "MemoryError", "message": "out of memory"}}
    finally:
        app.close()
    sys.stdout.write(json.dumps(reply, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
