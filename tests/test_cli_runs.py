"""``appbook runs list|show|cancel|retry`` and ``appbook approve|reject`` on SQLite and
PostgreSQL, through click's runner against the ``app`` fixture's database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from appbook.cli import main
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
    app.users.add("bob")
    return app


def cli(app: Appbook, *args: str) -> Result:
    options = ["--home", app.config.home, "--database-url", app.config.database_url]
    return CliRunner().invoke(main, [*args, *options], catch_exceptions=False)


def test_list_and_show(tickets: Appbook) -> None:
    runs = tickets.runs
    waiting = runs.advance(runs.start("tickets", "review", record_id=1)["id"])
    failed = runs.advance(runs.start("tickets", "broken", record_id=1)["id"])
    queued = runs.start("tickets", "later")
    out = cli(tickets, "runs", "list").output.splitlines()
    assert [line.split()[:3] for line in out] == [
        [str(queued["id"]), "queued", "tickets/later"],
        [str(failed["id"]), "failed", "tickets/broken"],
        [str(waiting["id"]), "waiting", "tickets/review"],
    ]
    assert "tester" in out[0]
    only = cli(tickets, "runs", "list", "--status", "failed,waiting", "--limit", "1").output
    assert only.split()[:2] == [str(failed["id"]), "failed"] and len(only.splitlines()) == 1
    assert cli(tickets, "runs", "list", "--workflow", "nope").output == "no runs\n"
    shown = cli(tickets, "runs", "show", str(failed["id"])).output
    assert "error: step bad:" in shown and "you can: retry" in shown
    (step,) = [line for line in shown.splitlines() if line.startswith("    bad")]
    assert step.split()[:4] == ["bad", "failed", "attempt", "1"] and "step bad:" in step
    asked = cli(tickets, "runs", "show", str(waiting["id"])).output
    assert "waiting in ask for a user with role managers" in asked
    as_json = cli(tickets, "runs", "show", "--json", str(waiting["id"])).output
    assert '"waiting_for"' in as_json and '"steps"' in as_json


def test_bad_input_is_explained(tickets: Appbook) -> None:
    bad = cli(tickets, "runs", "list", "--status", "bogus")
    assert bad.exit_code == 1 and "unknown run status 'bogus'" in bad.stderr
    missing = cli(tickets, "runs", "show", "99")
    assert missing.exit_code == 1 and "no workflow run 99" in missing.stderr
    usage = cli(tickets, "runs", "cancel", "seven")
    assert usage.exit_code == 2 and "'seven' is not a valid integer" in usage.stderr


def test_cancel_and_retry(tickets: Appbook) -> None:
    runs = tickets.runs
    queued = runs.start("tickets", "later")["id"]
    done = cli(tickets, "runs", "cancel", str(queued))
    assert done.exit_code == 0 and done.output == f"run {queued}: cancelled\n"
    again = cli(tickets, "runs", "cancel", str(queued))
    assert again.exit_code == 1 and "has already ended (cancelled)" in again.stderr
    failed = runs.advance(runs.start("tickets", "broken", record_id=1)["id"])["id"]
    retried = cli(tickets, "runs", "retry", str(failed))
    assert retried.output == f"run {failed}: queued at step bad\n"
    assert runs.get(failed)["status"] == "queued"
    nothing = cli(tickets, "runs", "retry", str(failed))
    assert nothing.exit_code == 1 and "has not failed (queued)" in nothing.stderr


def test_approve_and_reject(tickets: Appbook) -> None:
    runs = tickets.runs
    first = runs.advance(runs.start("tickets", "review", record_id=1)["id"])["id"]
    second = runs.advance(runs.start("tickets", "review", record_id=1)["id"])["id"]
    refused = cli(tickets, "approve", str(first), "--user", "bob")
    assert refused.exit_code == 1
    assert "error: step ask waits for a user with role 'managers', not 'bob'" in refused.stderr
    assert runs.get(first)["status"] == "waiting"
    mine = cli(tickets, "approve", str(first))  # the OS user holds no role either
    assert mine.exit_code == 1 and "not '" in mine.stderr
    ok = cli(tickets, "approve", str(first), "--user", "ada", "--comment", "fine")
    assert ok.exit_code == 0, ok.stderr
    assert ok.output.splitlines() == [f"run {first}: approved by ada", f"run {first}: succeeded"]
    assert runs.get(first)["outputs"]["ask"]["comment"] == "fine"
    assert tickets["tickets"].get(1)["status"] == 1
    no = cli(tickets, "reject", str(second), "--user", "ada")
    assert no.output.splitlines()[0] == f"run {second}: rejected by ada"
    assert tickets["tickets"].get(1)["status"] == 2
    late = cli(tickets, "reject", str(second), "--user", "ada")
    assert late.exit_code == 1 and "is not waiting for an approval" in late.stderr


def test_commands_are_listed_without_heavy_imports(tmp_path: Path) -> None:
    code = (
        "import sys, appbook.cli; "
        "print(sorted(m for m in ('sqlalchemy', 'nbformat') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    names = CliRunner().invoke(main, ["--help"]).output
    assert all(name in names for name in ("runs", "approve", "reject"))
    runs_help = CliRunner().invoke(main, ["runs", "--help"]).output
    assert all(name in runs_help for name in ("list", "show", "cancel", "retry"))
