"""Workflow runs on SQLite and PostgreSQL: steps, branches, waits, retries, failures, cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from appbook.server.engine import Appbook
from appbook.server.errors import Conflict, Forbidden, NotFound
from appbook.server.systables import RUNS, STEP_RUNS, utcnow

INVOICES = """\
name: invoices
fields:
  number: {type: string}
  amount: {type: number}
  status: {type: enum, choices: {0: New, 1: Accepted, 3: Paid, 4: Overdue}, default: 0}
  note: {type: string}
workflows:
  triage:
    stages:
      - name: decide
        steps:
          - name: big
            if: "record.amount > 10000"
            then: flag
            else: accept
          - name: flag
            update_record: {note: "needs approval"}
            next: done
          - name: accept
            update_field: {field: status, value: 1}
          - name: done
            finish: {}
  by_status:
    stages:
      - name: s
        steps:
          - name: pick
            switch: "record.status"
            cases: {"0": mark_new, "3": mark_paid}
            default: other
          - {name: mark_new, update_field: {field: note, value: new}, next: end}
          - {name: mark_paid, update_field: {field: note, value: paid}, next: end}
          - {name: other, update_field: {field: note, value: other}}
          - {name: end, finish: {}}
  later:
    stages:
      - name: s
        steps:
          - {name: pause, wait: {for: 1h}}
          - {name: mark, update_field: {field: status, value: 4}}
  flaky:
    stages:
      - name: s
        steps:
          - name: bad
            if: "record.amount / inputs.divisor > 1"
            then: ok
            else: ok
            retries: {count: 1, backoff: 10m}
          - {name: ok, finish: {}}
  tolerant:
    stages:
      - name: s
        steps:
          - name: bad
            update_field: {field: status, value: 99}
            on_failure: {goto: note}
          - {name: never, finish: {}}
          - {name: note, update_field: {field: note, value: recovered}}
  manual:
    stages:
      - name: s
        steps:
          - {name: ask, approval: {role: managers, rejected: refuse}}
          - {name: accept, update_field: {field: status, value: 1}, next: end}
          - {name: refuse, update_field: {field: note, value: refused}}
          - {name: end, finish: {}}
  named:
    stages:
      - name: s
        steps:
          - {name: ask, approval: {user: ada, deadline: 1h, on_expiry: fail}}
          - {name: end, finish: {}}
  lenient:
    stages:
      - name: s
        steps:
          - {name: ask, approval: {user: ada, deadline: 1h, on_expiry: approve}}
          - {name: mark, update_field: {field: status, value: 1}}
  scripted:
    stages:
      - name: s
        steps:
          - {name: run, notebook: work.ipynb}
"""


@pytest.fixture
def invoices(app: Appbook) -> Appbook:
    app.publish_texts({"invoices.component.yaml": INVOICES})
    return app


def new(app: Appbook, **values: Any) -> int:
    return int(app["invoices"].create({"number": "INV-1", **values})["id"])


def test_branches_update_the_record_and_every_step_is_a_row(invoices: Appbook) -> None:
    small, big = new(invoices, amount=50), new(invoices, amount=20000, number="INV-2")
    run = invoices["invoices"].run_workflow("triage", record_id=small)
    assert run["status"] == "succeeded" and run["step"] is None and run["finished_at"]
    assert invoices["invoices"].get(small)["status"] == 1
    steps = invoices.runs.steps(run["id"])
    assert [(s["step"], s["status"], s["attempt"]) for s in steps] == [
        ("big", "succeeded", 1),
        ("accept", "succeeded", 1),
        ("done", "succeeded", 1),
    ]
    assert steps[0]["outputs"] == {"result": False}
    assert steps[0]["idempotency_key"] == f"{run['id']}:big:1"
    flagged = invoices["invoices"].run_workflow("triage", record_id=big)
    record = invoices["invoices"].get(big)
    assert (record["note"], record["status"]) == ("needs approval", 0)
    assert [s["step"] for s in invoices.runs.steps(flagged["id"])] == ["big", "flag", "done"]
    assert record["updated_by"] == "tester"  # the run acts as the user who started it


def test_switch_takes_the_case_or_the_default(invoices: Appbook) -> None:
    paid, odd = new(invoices, status=3), new(invoices, status=1, number="INV-2")
    invoices["invoices"].run_workflow("by_status", record_id=paid)
    invoices["invoices"].run_workflow("by_status", record_id=odd)
    assert invoices["invoices"].get(paid)["note"] == "paid"
    assert invoices["invoices"].get(odd)["note"] == "other"


def test_a_wait_survives_until_due_then_the_run_goes_on(invoices: Appbook) -> None:
    record = new(invoices)
    run = invoices["invoices"].run_workflow("later", record_id=record)
    assert run["status"] == "waiting" and run["step"] == "mark"
    assert run["wake_at"] - utcnow() > timedelta(minutes=59)
    assert invoices.runs.advance(run["id"])["status"] == "waiting"  # not yet
    later = utcnow() + timedelta(hours=2)
    done = invoices.runs.advance(run["id"], now=later)
    assert done["status"] == "succeeded" and invoices["invoices"].get(record)["status"] == 4


def test_retries_wait_their_backoff_then_the_run_fails_naming_the_step(invoices: Appbook) -> None:
    record = new(invoices, amount=10)
    run = invoices["invoices"].run_workflow("flaky", record_id=record, inputs={"divisor": 0})
    assert run["status"] == "waiting" and "step bad:" in run["error"]  # first failure: retry
    assert "ZeroDivisionError" in run["error"]
    run = invoices.runs.advance(run["id"], now=utcnow() + timedelta(minutes=11))
    assert run["status"] == "failed" and run["error"].startswith("step bad:")
    attempts = [(s["attempt"], s["status"]) for s in invoices.runs.steps(run["id"])]
    assert attempts == [(1, "failed"), (2, "failed")]


def test_on_failure_goto_recovers(invoices: Appbook) -> None:
    record = new(invoices)
    run = invoices["invoices"].run_workflow("tolerant", record_id=record)
    assert run["status"] == "succeeded"
    assert "status" in run["error"]  # the failure stays on the run for the record
    assert invoices["invoices"].get(record)["note"] == "recovered"
    assert [s["step"] for s in invoices.runs.steps(run["id"])] == ["bad", "note"]


def test_a_notebook_step_whose_notebook_was_not_published_fails_clearly(
    invoices: Appbook,
) -> None:
    run = invoices["invoices"].run_workflow("scripted")  # published from texts: no notebook
    assert run["status"] == "failed"
    assert run["error"] == (
        "step run: 'work.ipynb' was not published with component 'invoices': "
        "publish the folder that holds it (appbook publish DIR)"
    )


def test_an_approval_waits_for_a_user_with_the_role(invoices: Appbook) -> None:
    invoices.users.add("ada", roles=["managers"])
    invoices.users.add("bob", roles=["clerks"])
    invoices.users.add("eve", roles=["managers"])
    invoices.users.disable("eve")
    yes, no = new(invoices), new(invoices, number="INV-2")
    run = invoices["invoices"].run_workflow("manual", record_id=yes)
    assert run["status"] == "waiting" and run["step"] == "ask" and run["wake_at"] is None
    assert invoices.runs.advance(run["id"])["status"] == "waiting"  # no deadline: waits
    for outsider in ("bob", "eve", "mallory"):
        with pytest.raises(Forbidden, match="waits for a user with role 'managers'"):
            invoices.runs.decide(run["id"], outsider, approve=True)
    done = invoices.runs.decide(run["id"], "ada", approve=True, comment="fine")
    assert done["status"] == "succeeded" and invoices["invoices"].get(yes)["status"] == 1
    assert done["outputs"]["ask"]["by"] == "ada" and done["outputs"]["ask"]["approved"] is True
    with pytest.raises(Conflict, match="not waiting for an approval"):
        invoices.runs.decide(run["id"], "ada", approve=True)
    refused = invoices["invoices"].run_workflow("manual", record_id=no)
    refused = invoices.runs.decide(refused["id"], "ada", approve=False)
    assert refused["status"] == "succeeded"  # the rejected branch ran to its end
    assert invoices["invoices"].get(no)["note"] == "refused"


def test_an_approval_deadline_applies_its_expiry(invoices: Appbook) -> None:
    invoices.users.add("ada")
    strict = invoices["invoices"].run_workflow("named", record_id=new(invoices))
    assert strict["wake_at"] is not None
    later = utcnow() + timedelta(hours=2)
    assert invoices.runs.advance(strict["id"])["status"] == "waiting"  # before the deadline
    timed_out = invoices.runs.advance(strict["id"], now=later)
    assert timed_out["status"] == "timed_out"
    assert timed_out["error"] == "step ask: no decision before the deadline"
    record = new(invoices, number="INV-2")
    lenient = invoices["invoices"].run_workflow("lenient", record_id=record)
    approved = invoices.runs.advance(lenient["id"], now=later)
    assert approved["status"] == "succeeded" and approved["outputs"]["ask"]["by"] == "(deadline)"
    assert invoices["invoices"].get(record)["status"] == 1


def test_cancel_and_unknown_things(invoices: Appbook) -> None:
    run = invoices["invoices"].run_workflow("later", record_id=new(invoices))
    cancelled = invoices.runs.cancel(run["id"])
    assert cancelled["status"] == "cancelled"
    assert invoices.runs.advance(run["id"])["status"] == "cancelled"  # stays cancelled
    with pytest.raises(Conflict, match="has already ended"):
        invoices.runs.cancel(run["id"])
    with pytest.raises(NotFound, match="has no workflow 'nope'"):
        invoices["invoices"].run_workflow("nope")
    with pytest.raises(NotFound, match="invoices record 999 does not exist"):
        invoices["invoices"].run_workflow("triage", record_id=999)
    with pytest.raises(NotFound, match="no workflow run 12345"):
        invoices.runs.get(12345)


CAPPED = (
    INVOICES
    + """\
  capped:
    max_concurrent: 1
    stages:
      - name: s
        steps:
          - {name: mark, update_field: {field: note, value: done}}
  fragile:
    stages:
      - name: s
        steps:
          - name: mark
            update_field: {field: note, value: done}
            retries: {count: 1, backoff: 1s}
"""
)


def test_claims_lease_runs_and_respect_the_concurrency_cap(app: Appbook) -> None:
    app.publish_texts({"invoices.component.yaml": CAPPED})
    record = new(app)
    first = app.runs.start("invoices", "capped", record_id=record)
    second = app.runs.start("invoices", "capped", record_id=record)
    claimed = app.runs.claim("worker-a")
    assert claimed is not None and claimed["id"] == first["id"]
    assert claimed["lease_owner"] == "worker-a"
    assert app.runs.claim("worker-b") is None  # the cap is 1 and worker-a holds one
    app.runs.heartbeat(first["id"], "worker-a")
    with pytest.raises(Conflict, match="not leased to worker-b"):
        app.runs.heartbeat(first["id"], "worker-b")
    done = app.runs.advance(first["id"], owner="worker-a")
    assert done["status"] == "succeeded" and done["lease_owner"] is None  # released
    again = app.runs.claim("worker-b")
    assert again is not None and again["id"] == second["id"]


def test_a_run_whose_worker_stopped_is_recovered_not_left_running(app: Appbook) -> None:
    app.publish_texts({"invoices.component.yaml": CAPPED})
    record = new(app)
    run = app.runs.start("invoices", "fragile", record_id=record)
    assert app.runs.claim("worker-a") is not None
    # worker-a starts the step, then dies: the step run stays "running", the lease runs out
    past = utcnow() - timedelta(minutes=5)
    with app.engine.begin() as conn:
        conn.execute(
            STEP_RUNS.insert().values(
                run_id=run["id"], step="mark", attempt=1, status="running",
                idempotency_key=f"{run['id']}:mark:1", outputs={}, error="", started_at=past,
            )
        )  # fmt: skip
        conn.execute(
            RUNS.update().where(RUNS.c.id == run["id"]).values(status="running", lease_until=past)
        )
    claimed = app.runs.claim("worker-b")
    assert claimed is not None and claimed["id"] == run["id"]
    now = utcnow()
    retrying = app.runs.advance(run["id"], owner="worker-b", now=now)
    assert retrying["status"] == "waiting"  # the stranded attempt failed; retry after 1 s
    done = app.runs.advance(run["id"], owner="worker-b", now=now + timedelta(seconds=2))
    assert done["status"] == "succeeded"
    attempts = [(s["attempt"], s["status"], s["error"]) for s in app.runs.steps(run["id"])]
    assert attempts[0] == (1, "failed", "step mark: its worker stopped before it finished")
    assert attempts[1][:2] == (2, "succeeded")
    assert app["invoices"].get(record)["note"] == "done"
