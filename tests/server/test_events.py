"""The outbox and the event buses: ordering, filters, catch-up, cross-process delivery."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import Engine

from appbook.server.db import create_engine, write_transaction
from appbook.server.errors import ServiceUnavailable
from appbook.server.events import (
    EventBus,
    LocalBus,
    RecordEvent,
    RedisBus,
    Subscription,
    append_event,
    last_seq,
    make_bus,
    read_outbox,
)
from appbook.server.events.fanout import Fanout
from appbook.server.events.poller import THREAD_PREFIX
from appbook.server.events.redis_bus import redact_url
from appbook.server.schema import ensure_schema

ROOT = Path(__file__).resolve().parents[2]
SLOW = 60.0  # a poll interval long enough that the poller never runs during a test


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path}/a.db")
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """PostgreSQL in a fresh schema (tests/conftest.py's pg_url)."""
    engine = create_engine(pg_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The outbox tests run on both backends."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    result: Engine = request.getfixturevalue(name)
    return result


@pytest.fixture
def channel() -> str:
    return f"appbook:test:{uuid.uuid4().hex}"


def write(
    engine: Engine, *items: tuple[str, int], bus: EventBus | None = None, op: str = "update"
) -> list[RecordEvent]:
    """Append one event per (component, record id) in one transaction, then publish."""
    with write_transaction(engine) as conn:
        events = [
            append_event(
                conn,
                component=component,
                record_id=record_id,
                op=op,
                changed=("name", "qty"),
                version=2,
                actor="tester",
            )
            for component, record_id in items
        ]
    if bus is not None:
        bus.publish(events)
    return events


def collect(sub: Subscription, count: int, within: float = 5.0) -> list[RecordEvent]:
    """Exactly ``count`` events, failing if they do not all come within ``within`` s."""
    deadline = time.monotonic() + within
    got: list[RecordEvent] = []
    while len(got) < count:
        event = sub.get(timeout=max(0.0, deadline - time.monotonic()))
        if event is None:
            pytest.fail(f"got {len(got)} of {count} events within {within} s: {got}")
        got.append(event)
    return got


def assert_no_more(sub: Subscription) -> None:
    assert sub.get(timeout=0.3) is None


def seqs(events: list[RecordEvent]) -> list[int]:
    return [e.seq for e in events]


# -- the outbox -----------------------------------------------------------------------------


def test_record_event_round_trips_through_json_and_the_outbox(engine: Engine) -> None:
    at = datetime(2026, 11, 25, 12, 30, 15, 123456, tzinfo=UTC)
    with write_transaction(engine) as conn:
        event = append_event(
            conn,
            component="items",
            record_id=7,
            op="create",
            changed=["code"],
            version=1,
            actor="ann",
            at=at,
        )
    assert event.seq >= 1
    assert event.changed == ("code",)
    assert event.at == at
    assert RecordEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event
    assert read_outbox(engine, 0) == [event]


def test_read_outbox_filters_and_pages(engine: Engine) -> None:
    assert last_seq(engine) == 0
    assert read_outbox(engine, 0) == []
    events = write(engine, ("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3))
    assert read_outbox(engine, 0) == events
    assert read_outbox(engine, events[1].seq) == events[2:]
    assert read_outbox(engine, 0, component="a") == [events[0], events[2], events[4]]
    assert read_outbox(engine, 0, limit=2) == events[:2]
    assert last_seq(engine) == events[-1].seq


def test_append_event_rejects_an_unknown_operation(sqlite_engine: Engine) -> None:
    with pytest.raises(ValueError, match="op must be one of"):
        write(sqlite_engine, ("a", 1), op="upsert")
    assert last_seq(sqlite_engine) == 0


@pytest.mark.postgres
def test_postgres_outbox_inserts_commit_in_seq_order(pg_engine: Engine) -> None:
    """A second writer's outbox insert waits for the first to commit (see outbox module)."""
    second_done = threading.Event()

    def second_writer() -> None:
        write(pg_engine, ("b", 1))
        second_done.set()

    with write_transaction(pg_engine) as conn:
        first = append_event(
            conn, component="a", record_id=1, op="create", changed=[], version=1, actor="x"
        )
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not second_done.wait(0.3)  # blocked on the outbox lock
    thread.join(10)
    assert second_done.is_set()
    assert [(e.component, e.seq > first.seq) for e in read_outbox(pg_engine, first.seq)] == [
        ("b", True)
    ]


# -- LocalBus -------------------------------------------------------------------------------


def test_local_bus_delivers_in_order(sqlite_engine: Engine) -> None:
    with LocalBus(sqlite_engine, poll_interval=SLOW) as bus, bus.subscribe() as sub:
        written = write(sqlite_engine, ("a", 1), ("a", 2), bus=bus)
        written += write(sqlite_engine, ("b", 1), ("a", 1), ("a", 3), bus=bus)
        assert collect(sub, 5) == written
        assert_no_more(sub)


def test_subscription_without_since_starts_now(sqlite_engine: Engine) -> None:
    write(sqlite_engine, ("a", 1))
    with LocalBus(sqlite_engine, poll_interval=SLOW) as bus, bus.subscribe() as sub:
        new = write(sqlite_engine, ("a", 2), bus=bus)
        assert collect(sub, 1) == new
        assert sub.position == new[0].seq


def test_component_filter(sqlite_engine: Engine) -> None:
    with LocalBus(sqlite_engine, poll_interval=SLOW) as bus, bus.subscribe("a") as sub:
        written = write(sqlite_engine, ("a", 1), ("b", 1), ("a", 2), ("b", 2), bus=bus)
        assert collect(sub, 2) == [written[0], written[2]]
        assert_no_more(sub)


def test_catch_up_then_live_without_duplicates_or_gaps(engine: Engine) -> None:
    before = write(engine, *[("a", i) for i in range(1205)])  # more than one page
    with LocalBus(engine, poll_interval=SLOW) as bus:
        sub = bus.subscribe(since=before[2].seq)
        assert seqs(collect(sub, 1202)) == seqs(before[3:])
        live = write(engine, ("a", 1), ("b", 1), bus=bus)
        bus.publish(before[-3:] + live)  # duplicates are dropped
        unpublished = write(engine, ("a", 2), ("b", 2))  # a lost publish: a gap
        latest = write(engine, ("a", 3), bus=bus)
        assert collect(sub, 5) == live + unpublished + latest
        assert_no_more(sub)
        sub.close()


def test_filtered_catch_up_fills_gaps_of_its_component(engine: Engine) -> None:
    before = write(engine, ("a", 1), ("b", 1), ("a", 2))
    with LocalBus(engine, poll_interval=SLOW) as bus, bus.subscribe("a", since=0) as sub:
        assert collect(sub, 2) == [before[0], before[2]]
        unpublished = write(engine, ("b", 2), ("a", 3))
        latest = write(engine, ("b", 3), bus=bus)
        assert collect(sub, 1) == [unpublished[1]]
        assert_no_more(sub)
        assert sub.position == latest[0].seq


def test_two_subscriptions_both_receive(sqlite_engine: Engine) -> None:
    with (
        LocalBus(sqlite_engine, poll_interval=SLOW) as bus,
        bus.subscribe() as one,
        bus.subscribe() as two,
    ):
        written = write(sqlite_engine, ("a", 1), ("b", 1), bus=bus)
        assert collect(one, 2) == written
        assert collect(two, 2) == written


def test_a_reader_far_behind_catches_up_from_the_outbox(sqlite_engine: Engine) -> None:
    fanout = Fanout()
    sub = Subscription(sqlite_engine, fanout, max_pending=2)
    written = [write(sqlite_engine, ("a", i))[0] for i in range(5)]
    for event in written:
        fanout.feed([event])  # the last three overflow and are dropped
    assert collect(sub, 5) == written
    sub.close()


def test_close_ends_delivery_and_the_poller_thread(sqlite_engine: Engine) -> None:
    bus = LocalBus(sqlite_engine, poll_interval=0.05)
    sub = bus.subscribe()
    pollers = [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]
    assert len(pollers) == 1
    assert pollers[0].daemon
    seen: list[RecordEvent] = []
    reader = threading.Thread(target=lambda: seen.extend(sub))
    reader.start()
    written = write(sqlite_engine, ("a", 1), bus=bus)
    sub.close()
    reader.join(5)
    assert not reader.is_alive()
    assert seen in ([], written)
    write(sqlite_engine, ("a", 2), bus=bus)
    assert sub.get(timeout=0) is None
    bus.close()
    pollers[0].join(5)
    assert not pollers[0].is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        bus.subscribe()


CHILD = """
import sys
from appbook.server.db import create_engine, write_transaction
from appbook.server.events import RedisBus, append_event

db, count, redis_url, channel = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
engine = create_engine(db)
with write_transaction(engine) as conn:
    events = [
        append_event(conn, component="a", record_id=i, op="create", changed=["x"], version=1,
                     actor="child")
        for i in range(count)
    ]
if redis_url:
    bus = RedisBus(engine, redis_url, channel, poll_interval=None)
    bus.publish(events)
    bus.close()
engine.dispose()
"""


def run_child(engine: Engine, count: int, redis_url: str = "", channel: str = "") -> None:
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", CHILD, url, str(count), redis_url, channel],
        check=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


@pytest.mark.slow
def test_local_bus_sees_writes_of_another_process_within_a_second(sqlite_engine: Engine) -> None:
    with LocalBus(sqlite_engine) as bus, bus.subscribe() as sub:
        run_child(sqlite_engine, 3)
        got = collect(sub, 3, within=1.0)
    assert [(e.actor, e.record_id) for e in got] == [("child", 0), ("child", 1), ("child", 2)]
    assert got == read_outbox(sqlite_engine, 0)


# -- RedisBus -------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.slow
def test_redis_bus_delivers_across_processes(
    sqlite_engine: Engine, redis_url: str, channel: str
) -> None:
    with (
        RedisBus(sqlite_engine, redis_url, channel, poll_interval=None) as bus,
        bus.subscribe() as sub,
    ):
        run_child(sqlite_engine, 2, redis_url, channel)
        got = collect(sub, 2, within=0.2)  # already sent when the child exits
        assert got == read_outbox(sqlite_engine, 0)
        assert_no_more(sub)


@pytest.mark.redis
def test_redis_bus_in_process_without_duplicates(
    sqlite_engine: Engine, redis_url: str, channel: str
) -> None:
    with (
        RedisBus(sqlite_engine, redis_url, channel, poll_interval=None) as bus,
        bus.subscribe() as sub,
        bus.subscribe("b") as only_b,
    ):
        written = write(sqlite_engine, ("a", 1), ("b", 1), bus=bus)
        assert collect(sub, 2) == written
        assert collect(only_b, 1) == written[1:]
        assert_no_more(sub)


@pytest.mark.redis
def test_redis_subscribers_catch_up_on_lost_publishes(
    sqlite_engine: Engine, redis_url: str, channel: str
) -> None:
    with (
        RedisBus(sqlite_engine, redis_url, channel, poll_interval=None) as writer,
        RedisBus(sqlite_engine, redis_url, channel, poll_interval=SLOW) as reader,
        reader.subscribe() as sub,
    ):
        lost = write(sqlite_engine, ("a", 1))  # e.g. Redis was down at publish time
        later = write(sqlite_engine, ("a", 2), bus=writer)
        assert collect(sub, 2) == lost + later


@pytest.mark.redis
def test_redis_safety_poll_finds_events_never_published(
    sqlite_engine: Engine, redis_url: str, channel: str
) -> None:
    with (
        RedisBus(sqlite_engine, redis_url, channel, poll_interval=0.05) as bus,
        bus.subscribe() as sub,
    ):
        lost = write(sqlite_engine, ("a", 1))
        assert collect(sub, 1) == lost


@pytest.mark.redis
def test_redis_listener_reconnects_and_catches_up(
    sqlite_engine: Engine, redis_url: str, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"appbook-test-{uuid.uuid4().hex}"
    admin = redis.Redis.from_url(redis_url)
    with (
        caplog.at_level(logging.INFO, logger="appbook.server.events"),
        RedisBus(
            sqlite_engine, f"{redis_url}?client_name={name}", channel, poll_interval=None
        ) as bus,
        bus.subscribe() as sub,
    ):
        lost = write(sqlite_engine, ("a", 1))  # never published: only a catch-up finds it
        killed = [
            admin.client_kill_filter(_id=client["id"])
            for client in admin.client_list()
            if client["name"] == name and client["sub"] != "0"
        ]
        assert killed == [1]
        assert collect(sub, 1) == lost
        later = write(sqlite_engine, ("a", 2), bus=bus)
        assert collect(sub, 1) == later
        assert_no_more(sub)
    admin.close()
    assert "lost Redis" in caplog.text
    assert "reconnected to Redis" in caplog.text


def test_unreachable_redis(sqlite_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    url = "redis://:secret@127.0.0.1:1/0"
    with RedisBus(sqlite_engine, url, timeout=1.0) as bus:
        with pytest.raises(ServiceUnavailable) as info:
            bus.subscribe()
        assert "Redis redis://:***@127.0.0.1:1/0 is not reachable" in info.value.message
        assert "secret" not in info.value.message
        with caplog.at_level(logging.WARNING, logger="appbook.server.events"):
            bus.publish(write(sqlite_engine, ("a", 1)))
        assert "stay in the outbox" in caplog.text
        assert "secret" not in caplog.text


def test_redact_url() -> None:
    assert redact_url("redis://u:p@h:6379/0") == "redis://u:***@h:6379/0"
    assert redact_url("rediss://:p@h/1") == "rediss://:***@h/1"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


def test_make_bus(sqlite_engine: Engine, redis_url: str) -> None:
    with make_bus(sqlite_engine, "") as local, make_bus(sqlite_engine, redis_url) as remote:
        assert isinstance(local, LocalBus)
        assert isinstance(remote, RedisBus)
