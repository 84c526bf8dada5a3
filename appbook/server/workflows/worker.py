"""What any worker does with a run: claim it under a lease, advance it, let go.

The local executor's processes and Celery's tasks both call :func:`advance_one`; the
database decides who holds a run (``Runs.claim`` under one lock), so a run sent twice, or
claimed by two workers, is still advanced by one at a time.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

from .runs import LEASE_SECONDS, Runs

if TYPE_CHECKING:
    from ..engine import Appbook


def worker_name(kind: str) -> str:
    """A lease owner name unique to this process: ``kind@host:pid:random``."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def advance_one(
    app: Appbook, owner: str, *, run_id: int | None = None, lease: float = LEASE_SECONDS
) -> dict[str, Any] | None:
    """Claim a due run (``run_id``, or any) for ``owner`` and advance it until it ends or
    waits; the run as it stands then, or None if nothing was due (or another worker holds
    that run under a live lease)."""
    runs = Runs(app, lease=lease)
    run = runs.claim(owner, run_id=run_id)
    if run is None:
        return None
    return runs.advance(int(run["id"]), owner=owner)
