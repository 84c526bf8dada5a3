"""Keep a worker's lease on a run alive while one of its steps runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import AppbookError

if TYPE_CHECKING:
    from .runs import Runs

log = logging.getLogger(__name__)


@contextmanager
def heartbeating(runs: Runs, run_id: int, owner: str) -> Iterator[None]:
    """Extend ``owner``'s lease on ``run_id`` every third of the lease until the block ends.

    A step can run far longer than a lease (a notebook for ten minutes); without this its
    run would look abandoned and another worker would take it over mid-step. A failed
    heartbeat is logged and retried at the next beat: a database blip must not stop a step.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(runs.lease / 3):
            try:
                runs.heartbeat(run_id, owner)
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
