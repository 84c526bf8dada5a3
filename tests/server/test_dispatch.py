"""The dispatcher (and reconciler) of the Celery executor, and the visibility-timeout check,
on SQLite and PostgreSQL. ``send`` here records what would go to the broker; the broker
itself is exercised with real workers in test_celery.py."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from appbook.server.engine import Appbook
from appbook.server.errors import ExecutorMisconfigured
from appbook.server.systables import RUNS, utcnow
from appbook.server.workflows.dispatch import Dispatcher
from appbook.server.workflows.runs import Runs
from appbook.server.workflows.visibility import check_visibility, longest_step

JOBS = """\
name: jobs
fields:
  amount: {type: number}
  note: {type: string}
workflows:
  five:
    stages:
      - name: s
        steps:
          - {name: mark, update_field: {field: note, value: marked}}
          - {name: pause, wait: {for: 1s}}
          - {name: done, finish: {}}
  capped:
    max_concurrent: 1
    stages:
      - name: s
        steps:
          - {name: pause, wait: {for: 1h}}
          - {name: done, finish: {}}
"""


@pytest.fixture
def jobs(app: Appbook) -> Appbook:
    app.publish_texts({"jobs.component.yaml": JOBS})
    return app


def _start(app: Appbook, count: int, workflow: str = "five") -> list[int]:
    record = app["jobs"].create({"amount": 1})
    return [
        int(app.runs.start("jobs", workflow, record_id=record["id"])["id"]) for _ in range(count)
    ]


def test_a_due_run_is_sent_once_per_turn_and_again_when_its_send_is_stale(jobs: Appbook) -> None:
    sent: list[int] = []
    dispatcher = Dispatcher(jobs, sent.append, redispatch_after=30)
    first, second, third = _start(jobs, 3)
    assert dispatcher.tick() == [first, second, third] == sent
    assert dispatcher.tick() == []  # on their way: not sent twice
    runs = Runs(jobs, lease=5)
    # A worker advances `first` to its wait, and takes `second` then dies (its lease runs out).
    runs.claim("w1", run_id=first)
    assert runs.advance(first, owner="w1")["status"] == "waiting"
    runs.claim("w2", run_id=second)
    assert dispatcher.tick() == []  # `first` waits, `second` is held, `third` is on its way
    soon = utcnow() + timedelta(seconds=6)
    assert dispatcher.tick(soon) == [first, second]  # they moved since: due anew, sent at once
    later = utcnow() + timedelta(seconds=31)
    assert dispatcher.tick(later) == [third]  # its message was lost: sent again
    assert dispatcher.sent == 6
    with jobs.engine.connect() as conn:
        stamps = dict(conn.execute(sa.select(RUNS.c.id, RUNS.c.dispatched_at)).all())
    assert stamps == {first: soon, second: soon, third: later}


def test_two_dispatchers_never_send_a_run_twice(jobs: Appbook) -> None:
    ids = _start(jobs, 40)
    sent: list[list[int]] = [[], []]
    both = threading.Barrier(2)
    failures: list[BaseException] = []

    def dispatch(i: int) -> None:
        dispatcher = Dispatcher(jobs, sent[i].append, redispatch_after=30)
        both.wait()
        try:
            dispatcher.tick()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=dispatch, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert sorted(sent[0] + sent[1]) == ids  # each run once, whoever won it


def test_a_failed_send_is_undone_and_tried_again(jobs: Appbook) -> None:
    ids = _start(jobs, 3)
    sent: list[int] = []

    def flaky(run_id: int) -> None:
        if len(sent) == 1:
            sent.append(-1)
            raise ConnectionError("broker down")
        sent.append(run_id)

    dispatcher = Dispatcher(jobs, flaky, redispatch_after=30)
    assert dispatcher.tick() == ids[:1]
    with jobs.engine.connect() as conn:
        unsent = conn.execute(sa.select(RUNS.c.id).where(RUNS.c.dispatched_at.is_(None)))
        assert sorted(unsent.scalars()) == ids[1:]
    assert dispatcher.failures == 1  # the thread waits longer before the next pass
    assert dispatcher.tick() == ids[1:]  # the next pass sends them, not a minute later
    assert dispatcher.failures == 0


def test_a_capped_workflow_is_sent_only_as_far_as_it_has_room(jobs: Appbook) -> None:
    ids = _start(jobs, 3, "capped")
    sent: list[int] = []
    dispatcher = Dispatcher(jobs, sent.append, redispatch_after=30)
    assert dispatcher.tick() == ids[:1]
    assert dispatcher.tick() == []  # the one on its way fills the room
    runs = Runs(jobs, lease=30)
    runs.claim("w", run_id=ids[0])
    assert dispatcher.tick() == []  # now it is held
    assert runs.advance(ids[0], owner="w")["status"] == "waiting"  # an hour: it lets go
    assert dispatcher.tick() == ids[1:2]


def test_the_thread_dispatches_until_stopped(jobs: Appbook) -> None:
    sent = threading.Event()
    dispatcher = Dispatcher(jobs, lambda _: sent.set(), interval=30)
    dispatcher.start()
    try:
        _start(jobs, 1)
        dispatcher.wake()  # not the 30 s interval
        assert sent.wait(20)
    finally:
        dispatcher.stop()
    assert dispatcher.sent == 1


def test_the_visibility_timeout_must_exceed_every_step(jobs: Appbook) -> None:
    check_visibility(jobs, 7200, 3600)  # no step has a timeout: the default applies
    with pytest.raises(ExecutorMisconfigured, match="has no timeout, so the default"):
        check_visibility(jobs, 3600, 3600)
    longer = JOBS.replace("value: marked}", "value: marked}, timeout: 3h")
    jobs.publish_texts({"jobs.component.yaml": longer})
    found = longest_step(jobs, 3600)
    assert found is not None
    assert (found.workflow, found.step, found.seconds) == ("five", "mark", 10800)
    with pytest.raises(ExecutorMisconfigured) as caught:
        check_visibility(jobs, 7200, 3600)
    message = caught.value.message
    assert "visibility timeout (7200 s)" in message
    assert "step 'mark' of workflow 'five' of component 'jobs' has timeout 10800 s" in message
    assert "APPBOOK_CELERY_VISIBILITY_TIMEOUT" in message and "above 10800" in message
    check_visibility(jobs, 10801, 3600)


def test_the_visibility_check_without_workflows_checks_the_default(app: Appbook) -> None:
    assert longest_step(app, 3600) is None
    check_visibility(app, 3601, 3600)
    with pytest.raises(ExecutorMisconfigured, match="the default step timeout is 3600 s"):
        check_visibility(app, 60, 3600)
