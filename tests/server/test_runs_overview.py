"""How runs are shown (durations, statuses, approvers, workflows) and what a component's
handle lists, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from appbook.server.engine import Appbook
from appbook.server.errors import Conflict, Forbidden, ValidationError
from appbook.server.workflows import overview
from tests.test_cli_runs import TICKETS


@pytest.fixture
def tickets(app: Appbook) -> Appbook:
    app.publish_texts({"tickets.component.yaml": TICKETS})
    app["tickets"].create({"title": "Paper"})
    app.users.add("ada", roles=["managers"])
    app.users.add("eve", roles=["managers"])
    app.users.disable("eve")
    return app


def test_a_component_lists_its_runs(tickets: Appbook) -> None:
    """``app["tickets"].runs(...)``: what a notebook user reaches for."""
    runs = tickets.runs
    waiting = runs.advance(runs.start("tickets", "review", record_id=1)["id"])["id"]
    queued = runs.start("tickets", "later")["id"]
    handle = tickets["tickets"]
    assert [r["id"] for r in handle.runs()] == [queued, waiting]
    assert [r["id"] for r in handle.runs("review", status="waiting")] == [waiting]
    assert [r["id"] for r in handle.runs(record_id=1, limit=1)] == [waiting]


def test_who_may_decide_and_what_applies(tickets: Appbook) -> None:
    runs = tickets.runs
    run = runs.advance(runs.start("tickets", "review", record_id=1)["id"])
    steps = runs.steps(run["id"])
    shown = overview.describe(run, steps)
    assert shown["waiting_for"] == {"step": "ask", "role": "managers", "deadline": None}
    assert overview.actions(tickets, run, steps, "ada") == ["approve", "reject", "cancel"]
    assert overview.actions(tickets, run, steps, "eve") == ["cancel"]  # disabled
    assert overview.actions(tickets, run, steps, "tester") == ["cancel"]
    done = runs.decide(run["id"], "ada", approve=True)
    assert overview.actions(tickets, done, runs.steps(run["id"]), "ada") == []


def test_workflows_and_statuses(tickets: Appbook) -> None:
    flows = {f["name"]: f for f in overview.workflows(tickets)}
    assert sorted(flows) == ["broken", "later", "review"]
    assert flows["review"]["steps"][0] == {"name": "ask", "kind": "approval", "stage": "decide"}
    assert overview.statuses(["failed,timed_out", "queued"]) == ["failed", "timed_out", "queued"]
    assert overview.statuses(None) is None and overview.statuses("") is None
    with pytest.raises(ValidationError) as bad:
        overview.statuses("done")
    assert "status" in bad.value.errors and "'done'" in bad.value.errors["status"][0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.25, "0.2s"),
        (42, "42s"),
        (185, "3m 05s"),
        (7260, "2h 01m"),
        (97200, "1d 03h"),
    ],
)
def test_durations_read_well(seconds: float | None, text: str) -> None:
    assert overview.format_duration(seconds) == text


def test_a_queued_decision_leaves_the_steps_to_an_executor(tickets: Appbook) -> None:
    runs = tickets.runs
    run_id = runs.advance(runs.start("tickets", "review", record_id=1)["id"])["id"]
    with pytest.raises(Forbidden):
        runs.decide(run_id, "tester", approve=True, advance=False)
    assert runs.get(run_id)["status"] == "waiting"
    run = runs.decide(run_id, "ada", approve=True, comment="ok", advance=False)
    assert run["status"] == "queued" and run["step"] == "accept"
    assert tickets["tickets"].get(1)["status"] == 0  # nothing ran here
    claimed = runs.claim("worker-1")  # an executor takes it like any queued run
    assert claimed is not None and claimed["id"] == run_id
    assert runs.advance(run_id, owner="worker-1")["status"] == "succeeded"
    assert tickets["tickets"].get(1)["status"] == 1
    with pytest.raises(Conflict):
        runs.decide(run_id, "ada", approve=False, advance=False)
