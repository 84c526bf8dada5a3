"""How soon a live grid shows a record written elsewhere, next to a grid that re-queries on a timer.

Two engines share one database, as a server and a notebook kernel do: engine A shows a live
``DataGrid`` of ``notes``; engine B creates a record. The figure is the time from just before
B's ``create`` to the moment A's grid holds the new record (polled every millisecond). The
record events travel through the event bus of the engine:

* **embedded default** (no Redis): B's write lands in the outbox; A's outbox poller reads it
  (every 0.25 s) and A's grid refreshes;
* **Redis**: B publishes the event after commit; A's subscription gets it at once.

The peer is what dashboards without events do: the same grid with ``live=False``, re-queried
every second by a timer (``refresh()``), measured the same way.

Run by hand (it asserts nothing): ``.venv/bin/python bench/live.py [--writes 30]``; Redis at
``$APPBOOK_BENCH_REDIS`` (default ``redis://127.0.0.1:6379/14``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine, percentile

from appbook.kernels.ui.grid import DataGrid
from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook

REDIS = os.environ.get("APPBOOK_BENCH_REDIS", "redis://127.0.0.1:6379/14")
NOTES = """\
name: notes
fields:
  text: {type: string, required: true}
  n: {type: integer, indexed: true}
"""


def main(argv: list[str] | None = None) -> int:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=30)
    args = parser.parse_args(argv)
    print(f"{machine()}; load average {load_average()}")
    rows = []
    for label, redis in (("embedded default (outbox poller)", ""), ("Redis", REDIS)):
        with tempfile.TemporaryDirectory(prefix="appbook-live-bench-") as home:
            url = f"sqlite:///{home}/appbook.db"
            viewer = engine(home, url, redis, "viewer")
            writer = engine(home, url, redis, "writer")
            try:
                writer.publish_texts({"notes.yaml": NOTES})
                live = DataGrid(viewer, "notes", order_by=["-n"], page_size=5, live=True)
                rows.append((f"live grid, {label}", measure(writer, live, args.writes)))
                live.close()
                timer = DataGrid(viewer, "notes", order_by=["-n"], page_size=5, live=False)
                ticking = every(1.0, timer.refresh)
                rows.append((f"timer grid (1 s), {label}", measure(writer, timer, args.writes)))
                ticking.set()
                timer.close()
            finally:
                viewer.close()
                writer.close()
        print(f"  {label} done", flush=True)
    print()
    print("| grid | writes | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for label, seconds in rows:
        ms = [s * 1000 for s in seconds]
        print(
            f"| {label} | {len(ms)} | {percentile(ms, 50):.0f} | {percentile(ms, 99):.0f} "
            f"| {max(ms):.0f} |"
        )
    print(f"\nload average after: {load_average()}")
    return 0


def engine(home: str, url: str, redis: str, actor: str) -> Appbook:
    """One engine over the shared database (as one process would have)."""
    config = EngineConfig.from_values(home=home, database_url=url, redis_url=redis)
    return Appbook(config, actor=actor)


def measure(writer: Appbook, grid: DataGrid, writes: int) -> list[float]:
    """Seconds from each write to the grid showing it."""
    seconds = []
    for i in range(writes):
        time.sleep(0.3)  # let the grid settle; writes arrive one at a time
        n = time.time_ns() // 1000  # grows across phases: the newest is always on top
        started = time.perf_counter()
        record = writer["notes"].create({"text": f"note {i}", "n": n})
        while not any(row["id"] == record["id"] for row in grid.rows):
            if time.perf_counter() - started > 10:
                raise RuntimeError("the grid did not show the record within 10 s")
            time.sleep(0.001)
        seconds.append(time.perf_counter() - started)
    return seconds


def every(interval: float, call: Callable[[], object]) -> threading.Event:
    """Call ``call`` every ``interval`` seconds until the returned event is set."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            call()

    threading.Thread(target=loop, daemon=True).start()
    return stop


if __name__ == "__main__":
    raise SystemExit(main())
