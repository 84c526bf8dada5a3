"""Races on one run: two decisions at the same moment, two workers claiming."""

from __future__ import annotations

from pathlib import Path

import pytest

from appbook.server.engine import Appbook
from appbook.server.errors import Conflict
from appbook.server.systables import utcnow
from appbook.server.workflows import approvals

ASK = """\
name: asks
fields:
  state: {type: string}
workflows:
  ask:
    stages:
      - name: s
        steps:
          - {name: ok, approval: {role: managers}}
          - {name: mark, update_field: {field: state, value: approved}}
"""


@pytest.fixture
def asks(app: Appbook, tmp_path: Path) -> Appbook:
    app.publish_texts({"asks.component.yaml": ASK})
    app.users.add("ada", roles=["managers"])
    app.users.add("bob", roles=["managers"])
    return app


def test_of_two_decisions_made_at_once_one_is_taken(asks: Appbook) -> None:
    record = asks["asks"].create({})
    run = asks.runs.start("asks", "ask", record_id=record["id"])
    waiting = asks.runs.advance(int(run["id"]))
    assert waiting["status"] == "waiting"
    runs = asks.runs
    # Both deciders read the run while it waited; ada writes first.
    pending = approvals.pending(runs, int(run["id"]))
    assert pending is not None
    step = runs.step_named(waiting, pending["step"])
    approvals.decided(runs, waiting, step, pending, "ada", True, "", utcnow())
    with pytest.raises(Conflict, match=r"step ok of workflow run \d+ was decided already"):
        approvals.decided(runs, waiting, step, pending, "bob", False, "", utcnow())
    final = runs.advance(int(run["id"]))
    assert final["status"] == "succeeded" and final["outputs"]["ok"]["by"] == "ada"


def test_a_run_is_claimed_by_one_worker(asks: Appbook) -> None:
    record = asks["asks"].create({})
    run = asks.runs.start("asks", "ask", record_id=record["id"])
    first = asks.runs.claim("w1")
    assert first is not None and first["id"] == run["id"]
    assert asks.runs.claim("w2") is None  # held under w1's live lease
    assert asks.runs.claim("w2", run_id=int(run["id"])) is None


def test_a_run_whose_workflow_was_unpublished_fails_saying_so(asks: Appbook) -> None:
    record = asks["asks"].create({})
    run = asks.runs.start("asks", "ask", record_id=record["id"])
    asks.publish_texts({"asks.component.yaml": ASK.split("workflows:")[0]})
    assert asks.runs.claim("w1") is not None
    ended = asks.runs.advance(int(run["id"]), owner="w1")
    assert ended["status"] == "failed" and ended["lease_owner"] is None
    assert ended["error"] == ("component 'asks' has no workflow 'ask' (none): the run cannot go on")
