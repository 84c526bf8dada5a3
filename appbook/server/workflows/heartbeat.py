"""Keep a worker's lease on a run alive while one of its steps runs, and notice a cancel."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import AppbookError

if TYPE_CHECKING:
    from .runs import Runs

log = logging.getLogger(__name__)

# How often a running step looks whether its run was cancelled: one indexed read of the
# run's status, so a cancel stops a ten-minute notebook within about a second.
CANCEL_POLL = 1.0


@contextmanager
def heartbeating(
    runs: Runs, run_id: int, owner: str, *, on_end: Callable[[], None] | None = None
) -> Iterator[None]:
    """Extend ``owner``'s lease on ``run_id`` every third of the lease until the block ends;
    call ``on_end`` once if the run ends meanwhile (it was cancelled).

    A step can run far longer than a lease (a notebook for ten minutes); without this its
    run would look abandoned and another worker would take it over mid-step. A failed
    heartbeat is logged and retried at the next beat: a database blip must not stop a step.
    """
    stop = threading.Event()
    every = runs.lease / 3

    def beat() -> None:
        last = time.monotonic()
        while not stop.wait(min(every, CANCEL_POLL) if on_end else every):
            try:
                if on_end is not None and runs.has_ended(run_id):
                    on_end()
                    return  # an ended run holds no lease: nothing more to extend
                if time.monotonic() - last >= every:
                    runs.heartbeat(run_id, owner)
                    last = time.monotonic()
            except AppbookError as exc:
                log.warning("heartbeat of workflow run %s failed: %s", run_id, exc.message)
            except Exception:
                log.exception("heartbeat of workflow run %s failed", run_id)

    thread = threading.Thread(target=beat, name=f"appbook-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
