"""Record-event triggers on SQLite and PostgreSQL: ops, fields, when, restarts, loops."""

from __future__ import annotations

import time
from typing import Any

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.workflows.cursors import read_cursor, write_cursor
from appbook.server.workflows.record_triggers import CURSOR, dispatch
from appbook.server.workflows.triggers import TriggerService

JOBS = """\
name: jobs
fields:
  title: {type: string}
  amount: {type: number}
  note: {type: string}
workflows:
  created:
    trigger: {on: create}
    inputs: {source: event}
    stages: [{name: s, steps: [{name: done, finish: {}}]}]
  big:
    trigger: {on: update, fields: [amount], when: "record.amount > 100"}
    stages: [{name: s, steps: [{name: done, finish: {}}]}]
  gone:
    trigger: {on: delete, when: "event.actor != 'robot'"}
    stages: [{name: s, steps: [{name: done, finish: {}}]}]
  stamp:
    trigger: {on: update, fields: [title]}
    stages: [{name: s, steps: [{name: mark, update_field: {field: title, value: stamped}}]}]
  broken:
    trigger: {on: create, when: "record.nothing.deeper > 1"}
    stages: [{name: s, steps: [{name: done, finish: {}}]}]
  off:
    enabled: false
    trigger: {on: create}
    stages: [{name: s, steps: [{name: done, finish: {}}]}]
"""


def setup(app: Appbook) -> TriggerService:
    app.publish_texts({"jobs.component.yaml": JOBS})
    service = TriggerService(app, "a")
    assert service.tick() == []  # first pass: the cursor starts at the outbox's end
    return service


def fired(runs: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return sorted((r["workflow"], r["record_id"]) for r in runs)


def test_create_fires_once_as_the_events_actor(app: Appbook) -> None:
    service = setup(app)
    ada = app.as_user("ada")
    record = ada["jobs"].create({"title": "t", "amount": 1})
    started = service.tick()
    assert fired(started) == [("created", record["id"])]  # not broken (when fails), not off
    run = started[0]
    assert run["created_by"] == "ada" and run["trigger"] == "event"
    assert run["inputs"]["source"] == "event"
    event = run["inputs"]["event"]
    assert event["op"] == "create" and event["record_id"] == record["id"]
    assert run["trigger_key"] == f"event:{event['seq']}:jobs:created"
    assert service.tick() == []
    assert read_cursor(app.engine, CURSOR) == {"seq": event["seq"]}


def test_fields_and_when_filter_updates(app: Appbook) -> None:
    service = setup(app)
    record = app["jobs"].create({"title": "t", "amount": 1})
    service.tick()
    app["jobs"].update(record["id"], {"amount": 50})  # amount changed, when does not hold
    app["jobs"].update(record["id"], {"note": "x"})  # not a watched field
    assert service.tick() == []
    app["jobs"].update(record["id"], {"amount": 500, "note": "y"})
    assert fired(service.tick()) == [("big", record["id"])]
    app["jobs"].update(record["id"], {"note": "z"})  # amount is still 500, but unchanged
    assert service.tick() == []


def test_delete_fires_without_a_record(app: Appbook) -> None:
    service = setup(app)
    record = app["jobs"].create({"title": "t"})
    robot = app.as_user("robot")["jobs"].create({"title": "r"})
    service.tick()
    app["jobs"].delete(record["id"])
    app.as_user("robot")["jobs"].delete(robot["id"])  # when: event.actor != 'robot'
    started = service.tick()
    assert fired(started) == [("gone", None)]
    assert started[0]["inputs"]["record_id"] == record["id"]
    assert started[0]["inputs"]["event"]["op"] == "delete"


def test_a_record_deleted_before_dispatch_is_skipped(app: Appbook) -> None:
    service = setup(app)
    record = app["jobs"].create({"title": "t"})
    app["jobs"].delete(record["id"])
    assert fired(service.tick()) == [("gone", None)]  # the create had no record left


def test_restart_neither_misses_nor_repeats(app: Appbook, config: EngineConfig) -> None:
    service = setup(app)
    first = app["jobs"].create({"title": "1"})
    assert fired(service.tick()) == [("created", first["id"])]
    second = app["jobs"].create({"title": "2"})  # written while no service runs
    service.stop()
    with Appbook(config, actor="tester") as other:  # another server, same database
        again = TriggerService(other, "b")
        assert fired(again.tick()) == [("created", second["id"])]
        assert again.tick() == []
        # a crash after the runs started but before the cursor moved replays harmlessly
        seq = read_cursor(other.engine, CURSOR)["seq"]
        write_cursor(other.engine, CURSOR, {"seq": seq - 1})
        replayed = again.tick()
        assert fired(replayed) == [("created", second["id"])]
        assert len(other.runs.query(workflow="created", limit=10)) == 2


def test_dispatch_pages_through_the_outbox(app: Appbook) -> None:
    setup(app)
    ids = [app["jobs"].create({"title": str(i)})["id"] for i in range(5)]
    pages = [dispatch(app, limit=2) for _ in range(3)]
    assert [p.more for p in pages] == [True, True, False]
    assert sorted(r["record_id"] for p in pages for r in p.started) == ids


def test_a_runs_own_writes_do_not_trigger_it_again(app: Appbook) -> None:
    service = setup(app)
    record = app["jobs"].create({"title": "t"})
    service.tick()
    app["jobs"].update(record["id"], {"title": "changed"})
    (run,) = service.tick()
    assert run["workflow"] == "stamp"
    done = app.runs.advance(run["id"])  # its step writes title = stamped, as tester
    assert done["status"] == "succeeded"
    assert app["jobs"].get(record["id"])["title"] == "stamped"
    assert service.tick() == []  # its own write: no second run, no loop
    app.as_user("bob")["jobs"].update(record["id"], {"title": "bob's"})  # someone else
    assert fired(service.tick()) == [("stamp", record["id"])]


def test_service_thread_starts_runs_for_live_events(app: Appbook) -> None:
    app.publish_texts({"jobs.component.yaml": JOBS})
    service = TriggerService(app, "a", interval=0.05)
    service.start()
    try:
        deadline = time.monotonic() + 30
        while read_cursor(app.engine, CURSOR) is None:  # the first pass set the cursor
            assert time.monotonic() < deadline, "the service never ran a pass"
            service._stopping.wait(0.01)
        record = app["jobs"].create({"title": "live"})
        while not app.runs.query(workflow="created"):
            assert time.monotonic() < deadline, "no run was started for the create"
            service._stopping.wait(0.01)
        (run,) = app.runs.query(workflow="created")
        assert run["record_id"] == record["id"]
    finally:
        service.stop()
