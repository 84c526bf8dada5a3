"""The runs view on SQLite and PostgreSQL: the table, filters, paging, a run's step
timeline, the buttons that apply for the viewing user, errors in the status line, polling."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from appbook.kernels.ui.runs import RunsView
from appbook.server.engine import Appbook

TICKETS = """\
name: tickets
fields:
  title: {type: string}
  status: {type: enum, choices: {0: New, 1: Accepted, 2: Rejected}, default: 0}
workflows:
  review:
    stages:
      - name: decide
        steps:
          - {name: check, if: "record.status == 0", then: ask, else: end}
          - {name: ask, approval: {role: managers, rejected: refuse}}
          - {name: accept, update_field: {field: status, value: 1}, next: end}
          - {name: refuse, update_field: {field: status, value: 2}}
          - {name: end, finish: {}}
  broken:
    stages:
      - name: s
        steps:
          - {name: bad, update_field: {field: status, value: 99}}
  later:
    stages:
      - name: s
        steps:
          - {name: pause, wait: {for: 1h}}
"""


@pytest.fixture
def tickets(app: Appbook) -> Appbook:
    app.publish_texts({"tickets.component.yaml": TICKETS})
    app["tickets"].create({"title": "Paper"})
    app.users.add("ada", roles=["managers"])
    return app


@pytest.fixture
def views() -> Iterator[Callable[..., RunsView]]:
    """Make views that are closed (pollers stopped) after the test."""
    made: list[RunsView] = []

    def make(app: Appbook, **kwargs: Any) -> RunsView:
        kwargs.setdefault("poll", 0)
        view = RunsView(app, **kwargs)
        made.append(view)
        return view

    yield make
    for view in made:
        view.close()


def shown(view: RunsView) -> list[str]:
    """The names of the action buttons on show."""
    return [n for n, b in view.action_buttons.items() if b.layout.display != "none"]


def visible_rows(view: RunsView) -> int:
    return sum(row.layout.display != "none" for row in view._table.children[1:])


def test_table_filters_and_pages(tickets: Appbook, views: Callable[..., RunsView]) -> None:
    runs = tickets.runs
    ids = [runs.start("tickets", "later")["id"] for _ in range(3)]
    failed = runs.advance(runs.start("tickets", "broken", record_id=1)["id"])["id"]
    view = views(tickets, page_size=2)
    assert [r["id"] for r in view.runs] == [failed, ids[2]] and visible_rows(view) == 2
    first = view.row_cells[0].value
    assert "tickets" in first and "broken" in first and "failed" in first and "tester" in first
    assert view.pager_buttons[0].disabled and not view.pager_buttons[1].disabled
    view.pager_buttons[1].click()
    assert [r["id"] for r in view.runs] == [ids[1], ids[0]]
    assert view.pager_buttons[1].disabled and not view.pager_buttons[0].disabled
    view.pager_buttons[0].click()
    assert [r["id"] for r in view.runs] == [failed, ids[2]]
    view.status_filter.value = "failed"
    assert [r["id"] for r in view.runs] == [failed] and visible_rows(view) == 1
    view.status_filter.value = ""
    assert ("tickets/later", "tickets/later") in view.workflow_filter.options
    view.workflow_filter.value = "tickets/later"
    assert [r["id"] for r in view.runs] == [ids[2], ids[1]]


def test_timeline_and_actions_for_a_role_holder(
    tickets: Appbook, views: Callable[..., RunsView]
) -> None:
    runs = tickets.runs
    run_id = runs.advance(runs.start("tickets", "review", record_id=1)["id"])["id"]
    mine = views(tickets)  # "tester" holds no role: only Cancel applies
    mine.row_buttons[0].click()
    assert mine.selected_id == run_id and shown(mine) == ["cancel"]
    assert mine.comment.layout.display == "none"
    assert "waiting in ask for a user with role managers" in mine.header.value
    timeline = mine.timeline.value
    assert timeline.index(">check<") < timeline.index(">ask<") and "waiting" in timeline
    ada = views(tickets.as_user("ada"))
    ada.select(run_id)
    assert shown(ada) == ["approve", "reject", "cancel"] and ada.comment.layout.display == ""
    ada.comment.value = "looks fine"
    ada.action_buttons["approve"].click()
    # Decided, and queued for the executor at the next step (the kernel runs no step).
    assert ada.status.kind == "ok" and ada.status.text == f"run {run_id}: approve done, now queued"
    assert ada.selected is not None and ada.selected["step"] == "accept"
    assert shown(ada) == ["cancel"] and ada.comment.value == ""
    assert runs.get(run_id)["outputs"]["ask"] == {
        **runs.get(run_id)["outputs"]["ask"], "by": "ada", "comment": "looks fine",
    }  # fmt: skip
    runs.advance(run_id)  # as the executor would
    assert ada.poll_once() is True and shown(ada) == []
    assert ">accept<" in ada.timeline.value and tickets["tickets"].get(1)["status"] == 1


def test_reject_retry_and_cancel(tickets: Appbook, views: Callable[..., RunsView]) -> None:
    runs = tickets.runs
    waiting = runs.advance(runs.start("tickets", "review", record_id=1)["id"])["id"]
    ada = views(tickets.as_user("ada"))
    ada.select(waiting)
    assert ada.reject()["step"] == "refuse"
    runs.advance(waiting)
    assert tickets["tickets"].get(1)["status"] == 2
    failed = runs.advance(runs.start("tickets", "broken", record_id=1)["id"])["id"]
    ada.refresh()
    ada.select(failed)
    assert shown(ada) == ["retry"] and "step bad:" in ada.header.value
    ada.action_buttons["retry"].click()
    assert runs.get(failed)["status"] == "queued" and shown(ada) == ["cancel"]
    ada.action_buttons["cancel"].click()
    assert runs.get(failed)["status"] == "cancelled" and shown(ada) == []


def test_errors_go_to_the_status_line(tickets: Appbook, views: Callable[..., RunsView]) -> None:
    runs = tickets.runs
    run_id = runs.advance(runs.start("tickets", "review", record_id=1)["id"])["id"]
    view = views(tickets.as_user("ada"))
    view.select(run_id)
    runs.cancel(run_id)  # someone else acted first; the buttons are stale
    view.action_buttons["approve"].click()
    assert view.status.kind == "error"
    assert view.status.text == f"workflow run {run_id} is not waiting for an approval"
    assert "Traceback" not in view.status.value
    assert view.selected is not None and view.selected["status"] == "waiting"  # not yet read
    view.refresh_button.click()
    assert view.status.text == "" and shown(view) == []
    nothing = views(tickets)
    nothing.action_buttons["retry"].click()  # no run selected
    assert nothing.status.kind == "error" and nothing.status.text == "select a run first"
    with pytest.raises(ValueError, match="page_size"):
        RunsView(tickets, page_size=0)


def test_polling_redraws_when_runs_change(tickets: Appbook, views: Callable[..., RunsView]) -> None:
    view = views(tickets)
    assert view.runs == [] and view.poll_once() is False  # nothing changed
    run_id = tickets.runs.start("tickets", "later")["id"]
    assert view.poll_once() is True and [r["id"] for r in view.runs] == [run_id]
    view.select(run_id)
    assert view.poll_once() is False
    tickets.runs.advance(run_id)  # now waiting in pause
    assert view.poll_once() is True and ">pause<" in view.timeline.value
    # The poller thread does the same on its own.
    live = views(tickets, poll=0.05)
    second = tickets.runs.start("tickets", "later")["id"]
    deadline = time.monotonic() + 10
    while second not in [r["id"] for r in live.runs] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r["id"] for r in live.runs] == [second, run_id]
