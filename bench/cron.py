"""Cron firing delay: from a due time to its run row, Appbook's trigger service vs a plain loop.

Every firing's delay is ``run.created_at - due`` (both read back from ``appbook_runs``), so
the figure covers waking up, the sweep (registry, cursors, lease renewal), the trigger-key
look-up and the insert. To get many firings in little time the schedules fire every second:
croniter's six-field ``* * * * * *``. Definitions accept five fields only, so the bench
publishes ``* * * * *`` and swaps the expression in :func:`cron.schedules` (the one
function replaced); the sweep, the cursors, the leases, the trigger keys, the service
thread and ``Runs.start`` are the production code.

* **Appbook**: ``--replicas`` ``TriggerService`` threads on one database (one holds the
  leases and fires; the others only try to take them), ``--workflows`` schedules.
* **peer**: what one writes without the service: one thread per schedule that sleeps until
  croniter's next time and calls ``Runs.start`` with the same trigger key (no cursors, no
  leases: nothing survives a restart and two replicas would both fire).

The two sides run one after the other for ``--seconds`` each, on the same database.
Run by hand (it asserts nothing):
``.venv/bin/python bench/cron.py --backend sqlite --seconds 60 --workflows 1``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine, percentile, temporary_database

from appbook.server.config import EngineConfig
from appbook.server.db import read_transaction
from appbook.server.engine import Appbook
from appbook.server.systables import RUNS
from appbook.server.workflows import cron
from appbook.server.workflows.schedule import next_due
from appbook.server.workflows.triggers import TriggerService

PER_SECOND = "* * * * * *"


def component(workflows: int) -> str:
    lines = ["name: jobs", "fields:", "  note: {type: string}", "workflows:"]
    for i in range(workflows):
        lines += [
            f"  w{i}:",
            '    trigger: {cron: "* * * * *"}',
            "    stages: [{name: s, steps: [{name: done, finish: {}}]}]",
        ]
    return "\n".join(lines) + "\n"


def per_second(original: object) -> object:
    def schedules(app: Appbook) -> list[cron.CronSchedule]:
        found = original(app)  # type: ignore[operator]
        return [
            cron.CronSchedule(s.component, s.workflow, s.definition, PER_SECOND, "UTC", s.missed)
            for s in found
        ]

    return schedules


def delays(app: Appbook, prefix: str) -> list[float]:
    """Milliseconds from due time to run row, of every run whose key starts with ``prefix``."""
    query = sa.select(RUNS.c.inputs, RUNS.c.created_at).where(RUNS.c.trigger_key.startswith(prefix))
    with read_transaction(app.engine) as conn:
        rows = conn.execute(query).all()
    return [
        (row.created_at - datetime.fromisoformat(row.inputs["due"])).total_seconds() * 1000
        for row in rows
    ]


def appbook_side(app: Appbook, seconds: float, replicas: int) -> list[float]:
    services = [TriggerService(app, f"bench-{i}") for i in range(replicas)]
    for service in services:
        service.start()
    time.sleep(seconds)
    for service in services:
        service.stop()
    return delays(app, "cron:")


def peer_side(app: Appbook, seconds: float, workflows: int) -> list[float]:
    stop = threading.Event()
    runner = app.as_user("cron")

    def loop(workflow: str) -> None:
        moment = datetime.now(UTC)
        while not stop.is_set():
            due = next_due(PER_SECOND, ZoneInfo("UTC"), moment)
            assert due is not None
            if stop.wait(max(0.0, (due - datetime.now(UTC)).total_seconds())):
                return
            runner.runs.start(
                "jobs",
                workflow,
                inputs={"due": due.isoformat()},
                trigger="cron",
                trigger_key=f"peer:jobs:{workflow}:{due.isoformat()}",
            )
            moment = due

    threads = [threading.Thread(target=loop, args=(f"w{i}",)) for i in range(workflows)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return delays(app, "peer:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workflows", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    cron.schedules = per_second(cron.schedules)  # type: ignore[assignment]
    with temporary_database(args.backend) as (url, home):
        config = EngineConfig.from_values(home=str(home), database_url=url, redis_url="")
        with Appbook(config, actor="bench") as app:
            app.publish_texts({"jobs.component.yaml": component(args.workflows)})
            ours = appbook_side(app, args.seconds, args.replicas)
            peer = peer_side(app, args.seconds, args.workflows)
    print(f"# {machine()}; load {load_average()}; {args.backend}")
    print(f"# {args.workflows} per-second schedule(s), {args.seconds:g} s a side")
    print("| side | firings | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    label = f"TriggerService ({args.replicas} replicas)"
    for name, samples in ((label, ours), ("peer: sleep-until-due loop", peer)):
        print(
            f"| {name} | {len(samples)} | {percentile(samples, 50):.1f} | "
            f"{percentile(samples, 99):.1f} | {max(samples, default=float('nan')):.1f} |"
        )


if __name__ == "__main__":
    main()
