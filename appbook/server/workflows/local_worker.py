"""One process of the local executor: claim a due run, advance it, repeat.

Started by :class:`~appbook.server.workflows.executor.LocalExecutor` as
``python -m appbook.server.workflows.local_worker`` with the data layer in ``APPBOOK_*``
variables. A line on standard input wakes it; ``stop`` (or SIGTERM, or its input closing
because the parent went away) makes it stop between two steps, handing the run it holds
back to the queue.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from ..config import EngineConfig
from ..engine import Appbook
from .runs import LEASE_SECONDS, Runs
from .worker import worker_name

log = logging.getLogger("appbook.worker")


def listen(stream: object, wake: threading.Event, stop: threading.Event) -> None:
    """Wake on every line of ``stream``; stop on ``stop`` or at its end."""
    for line in stream:  # type: ignore[attr-defined]
        if line.strip() == b"stop":
            break
        wake.set()
    stop.set()
    wake.set()


def work(
    app: Appbook, runs: Runs, owner: str, wake: threading.Event, stop: threading.Event, poll: float
) -> None:
    """Advance due runs until ``stop`` is set."""
    failures = 0
    while not stop.is_set():
        try:
            run = runs.claim(owner) if runs.any_due() else None
            if run is not None:
                runs.advance(int(run["id"]), owner=owner, stop=stop.is_set)
                failures = 0
                continue
        except Exception:
            # The database may be down for a moment: keep the process, back off a little.
            failures += 1
            log.exception("workflow worker %s: could not advance runs", owner)
            stop.wait(min(30.0, poll * 2**failures))
            continue
        wake.wait(poll)
        wake.clear()


def main() -> None:
    """Run the worker loop until told to stop."""
    logging.basicConfig(level=logging.INFO, format="[appbook worker %(process)d] %(message)s")
    lease = float(os.environ.get("APPBOOK_RUN_LEASE") or LEASE_SECONDS)
    poll = float(os.environ.get("APPBOOK_WORKER_POLL") or 0.5)
    wake, stop = threading.Event(), threading.Event()

    def on_term(*_: object) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    threading.Thread(target=listen, args=(sys.stdin.buffer, wake, stop), daemon=True).start()
    app = Appbook(EngineConfig(), actor="appbook-worker")
    owner = worker_name("local")
    started = time.monotonic()
    try:
        work(app, Runs(app, lease=lease), owner, wake, stop, poll)
    finally:
        app.close()
        log.info("stopped after %.0f s", time.monotonic() - started)


if __name__ == "__main__":
    main()
