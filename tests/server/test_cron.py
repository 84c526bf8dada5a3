"""Cron triggers on SQLite and PostgreSQL: due times once, leases, DST, missed-run policies."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from appbook.server.engine import Appbook
from appbook.server.workflows import leases
from appbook.server.workflows.cron import CRON_ACTOR, sweep
from appbook.server.workflows.cursors import read_cursor, write_cursor
from appbook.server.workflows.schedule import last_due, next_due
from appbook.server.workflows.triggers import CRON_LEASE, EVENTS_LEASE, TriggerService

T0 = datetime(2026, 6, 1, 8, 0, 30, tzinfo=UTC)


def component(trigger: str, *, inputs: str = "{}", enabled: bool = True) -> str:
    return f"""\
name: jobs
fields:
  note: {{type: string}}
workflows:
  tick:
    enabled: {str(enabled).lower()}
    trigger: {trigger}
    inputs: {inputs}
    stages:
      - name: s
        steps:
          - {{name: done, finish: {{}}}}
"""


def publish(app: Appbook, trigger: str, **kwargs: Any) -> None:
    app.publish_texts({"jobs.component.yaml": component(trigger, **kwargs)})


def dues(runs: list[dict[str, Any]]) -> list[str]:
    return [r["inputs"]["due"] for r in runs]


def all_runs(app: Appbook) -> list[dict[str, Any]]:
    return sorted(app.runs.query(workflow="tick", limit=1000), key=lambda r: r["id"])


def test_fires_each_due_time_once_from_first_sight(app: Appbook) -> None:
    publish(app, '{cron: "*/5 * * * *"}', inputs="{who: bot}")
    service = TriggerService(app, "a")
    assert service.tick(T0) == []  # first sight: counting starts now, no back-fill
    assert service.next_due == datetime(2026, 6, 1, 8, 5, tzinfo=UTC)
    assert service.tick(T0 + timedelta(minutes=4)) == []
    started = service.tick(T0 + timedelta(minutes=5))
    assert dues(started) == ["2026-06-01T08:05:00+00:00"]
    run = started[0]
    assert run["trigger"] == "cron" and run["created_by"] == CRON_ACTOR
    assert run["trigger_key"] == "cron:jobs:tick:2026-06-01T08:05:00+00:00"
    assert run["inputs"] == {"who": "bot", "due": "2026-06-01T08:05:00+00:00"}
    assert service.tick(T0 + timedelta(minutes=5, seconds=10)) == []  # not twice
    assert read_cursor(app.engine, "cron:jobs:tick")["last"] == "2026-06-01T08:05:00+00:00"
    assert len(all_runs(app)) == 1


def test_two_services_fire_each_time_once_and_take_over(app: Appbook) -> None:
    publish(app, '{cron: "* * * * *"}')
    first, second = TriggerService(app, "a"), TriggerService(app, "b")
    first.tick(T0)
    assert second.tick(T0) == [] and not second.holds(CRON_LEASE)
    started: list[dict[str, Any]] = []
    for minute in range(1, 4):
        moment = T0 + timedelta(minutes=minute)
        started += first.tick(moment) + second.tick(moment)
    assert len(dues(started)) == 3 and first.holds(CRON_LEASE)
    first.stop()  # releases its leases: the other one goes on at once
    assert leases.holder(app.engine, CRON_LEASE, now=T0) is None
    taken = second.tick(T0 + timedelta(minutes=4))
    assert dues(taken) == ["2026-06-01T08:04:00+00:00"] and second.holds(CRON_LEASE)
    assert len(all_runs(app)) == 4


def test_a_dead_holder_is_replaced_when_its_lease_runs_out(app: Appbook) -> None:
    publish(app, '{cron: "* * * * *"}')
    dead, alive = TriggerService(app, "dead", lease=15), TriggerService(app, "alive", lease=15)
    dead.tick(T0)  # holds the leases, then never runs again (no stop: it crashed)
    assert alive.tick(T0 + timedelta(seconds=10)) == []
    assert leases.holder(app.engine, EVENTS_LEASE, now=T0) == "dead"
    started = alive.tick(T0 + timedelta(seconds=31))  # 08:01:00 is due, the lease is over
    assert dues(started) == ["2026-06-01T08:01:00+00:00"]


def test_many_schedules_due_together_each_fire_once(app: Appbook) -> None:
    """Runs of schedules due at the same time start side by side (a thread pool)."""
    lines = ["name: many", "fields:", "  note: {type: string}", "workflows:"]
    for i in range(12):
        lines += [
            f"  w{i}:",
            '    trigger: {cron: "*/15 * * * *"}',
            "    stages: [{name: s, steps: [{name: done, finish: {}}]}]",
        ]
    app.publish_texts({"many.component.yaml": "\n".join(lines) + "\n"})
    service = TriggerService(app, "a")
    service.tick(T0)
    moment = T0 + timedelta(minutes=15)
    started = service.tick(moment)
    assert sorted(r["workflow"] for r in started) == sorted(f"w{i}" for i in range(12))
    assert service.tick(moment) == []
    assert len(app.runs.query(component="many", limit=100)) == 12


def test_a_sweep_repeated_after_a_crash_starts_no_second_run(app: Appbook) -> None:
    """A crash after the runs were started but before the cursor moved: the next sweep
    finds the same due time again, and its trigger key returns the run it started."""
    publish(app, '{cron: "* * * * *"}')
    service = TriggerService(app, "a")
    service.tick(T0)
    before = read_cursor(app.engine, "cron:jobs:tick")
    moment = T0 + timedelta(minutes=1)
    first = service.tick(moment)
    write_cursor(app.engine, "cron:jobs:tick", before)  # as if the cursor write was lost
    again = sweep(app, moment).started
    assert dues(first) == dues(again) and first[0]["id"] == again[0]["id"]
    assert len(all_runs(app)) == 1


@pytest.mark.parametrize(("missed", "expected"), [("skip", []), ("run_once", ["09:00"])])
def test_missed_runs_after_downtime(app: Appbook, missed: str, expected: list[str]) -> None:
    publish(app, f'{{cron: "0 * * * *", missed: {missed}}}')
    TriggerService(app, "a").tick(T0)  # 08:00:30; then no server until 09:30
    later = TriggerService(app, "b")
    started = later.tick(T0 + timedelta(hours=1, minutes=30))
    assert [d[11:16] for d in dues(started)] == expected
    # either way the missed times are dealt with: the next hour fires on time, once
    assert dues(later.tick(datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC))) == [
        "2026-06-01T10:00:00+00:00"
    ]
    assert later.tick(datetime(2026, 6, 1, 10, 0, 6, tzinfo=UTC)) == []


def test_run_once_fires_latest_missed_and_on_time_ones(app: Appbook) -> None:
    publish(app, '{cron: "*/10 * * * *", missed: run_once}')
    TriggerService(app, "a").tick(T0)
    # down from 08:00:30 to 09:00:20: 08:10 … 08:50 missed, 09:00 is within the grace
    started = TriggerService(app, "b").tick(datetime(2026, 6, 1, 9, 0, 20, tzinfo=UTC))
    assert [d[11:16] for d in dues(started)] == ["08:50", "09:00"]


def test_disabled_workflows_do_not_fire_nor_count_as_missed(app: Appbook) -> None:
    publish(app, '{cron: "0 * * * *", missed: run_once}')
    service = TriggerService(app, "a")
    service.tick(T0)
    publish(app, '{cron: "0 * * * *", missed: run_once}', enabled=False)
    app.registry.refresh(force=True)
    assert service.tick(T0 + timedelta(hours=2)) == []
    publish(app, '{cron: "0 * * * *", missed: run_once}')
    app.registry.refresh(force=True)
    moment = T0 + timedelta(hours=3)
    assert service.tick(moment) == []  # counts from re-enabling: nothing back-filled
    assert dues(service.tick(moment + timedelta(hours=1))) == ["2026-06-01T12:00:00+00:00"]


def test_a_changed_schedule_counts_from_now(app: Appbook) -> None:
    publish(app, '{cron: "0 * * * *", missed: run_once}')
    service = TriggerService(app, "a")
    service.tick(T0)
    publish(app, '{cron: "30 * * * *", missed: run_once}')
    app.registry.refresh(force=True)
    assert service.tick(T0 + timedelta(hours=5)) == []
    assert read_cursor(app.engine, "cron:jobs:tick")["cron"] == "30 * * * *"


def test_time_zone_and_dst(app: Appbook) -> None:
    publish(app, '{cron: "0 2 * * *", timezone: Europe/Paris}')
    service = TriggerService(app, "a")
    start = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    service.tick(start)
    started: list[dict[str, Any]] = []
    moment = start
    while moment < datetime(2026, 3, 30, 23, tzinfo=UTC):  # a tick every 10 minutes
        moment += timedelta(minutes=10)
        started += service.tick(moment)
    # 02:00 CET is 01:00 UTC; on 29 March 02:00 does not exist: it fires at 03:00 CEST
    assert dues(started) == [
        "2026-03-28T01:00:00+00:00",
        "2026-03-29T01:00:00+00:00",
        "2026-03-30T00:00:00+00:00",
    ]


def test_schedule_across_both_transitions() -> None:
    paris, new_york = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")

    def series(expr: str, zone: ZoneInfo, start: datetime, count: int) -> list[str]:
        out, moment = [], start
        for _ in range(count):
            found = next_due(expr, zone, moment)
            assert found is not None
            out.append(found.astimezone(zone).strftime("%H:%M%z"))
            moment = found
        return out

    # spring: the half-hourly schedule keeps 30 real minutes through the missing hour
    spring = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert series("*/30 * * * *", paris, spring, 4) == [
        "01:30+0100", "03:00+0200", "03:30+0200", "04:00+0200",
    ]  # fmt: skip
    # autumn: 01:30 happens twice in New York (EDT, then EST) and fires once, the first
    autumn = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
    once = next_due("30 1 * * *", new_york, autumn)
    assert once == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert next_due("30 1 * * *", new_york, once) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    # two wall times, one instant (spring): "0,30 2 * * *" and 03:30 become one firing
    both = next_due("0,30 2 * * *", paris, datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    assert both == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert last_due("0 2 * * *", paris, datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    assert next_due("0 0 30 2 *", paris, spring) is None  # never due


def test_lease_acquire_renew_release(app: Appbook) -> None:
    engine = app.engine
    assert leases.acquire(engine, "job", "a", 10, now=T0)
    assert not leases.acquire(engine, "job", "b", 10, now=T0 + timedelta(seconds=5))
    assert leases.acquire(engine, "job", "a", 10, now=T0 + timedelta(seconds=9))  # renewed
    assert not leases.acquire(engine, "job", "b", 10, now=T0 + timedelta(seconds=15))
    assert leases.acquire(engine, "job", "b", 10, now=T0 + timedelta(seconds=20))  # ran out
    assert not leases.release(engine, "job", "a")
    assert leases.holder(engine, "job", now=T0 + timedelta(seconds=21)) == "b"
    assert leases.release(engine, "job", "b")
    assert leases.holder(engine, "job") is None


def test_concurrent_first_acquisitions_have_one_winner(app: Appbook) -> None:
    """Eight owners race for a lease nobody holds yet (no row): exactly one gets it."""
    barrier = threading.Barrier(8)
    won: list[str] = []

    def race(owner: str) -> None:
        barrier.wait()
        if leases.acquire(app.engine, "race", owner, 30):
            won.append(owner)

    threads = [threading.Thread(target=race, args=(f"o{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and leases.holder(app.engine, "race") == won[0]


def test_service_thread_stops_and_lets_its_leases_go(app: Appbook) -> None:
    publish(app, '{cron: "* * * * *"}')
    service = TriggerService(app, "a", interval=0.05)
    service.start()
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while leases.holder(app.engine, CRON_LEASE) != "a":  # its first pass took the lease
        assert datetime.now(UTC) < deadline, "the service never took its lease"
        service._stopping.wait(0.01)
    service.stop()
    assert leases.holder(app.engine, CRON_LEASE) is None
    assert leases.holder(app.engine, EVENTS_LEASE) is None
    assert read_cursor(app.engine, "cron:jobs:tick") is not None
