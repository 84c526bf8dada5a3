"""The ``appbook`` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "notebooks" / "examples"


def appbook(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APPBOOK_HOME": str(tmp_path / "home")}
    env.pop("APPBOOK_DATABASE_URL", None)
    env.pop("APPBOOK_REDIS_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "appbook", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_help_lists_commands(tmp_path: Path) -> None:
    out = appbook(tmp_path, "--help").stdout
    for command in (
        "serve",
        "publish",
        "publications",
        "rollback",
        "schema",
        "records",
        "db",
        "files",
        "users",
        "run",
    ):
        assert command in out


def test_help_does_not_import_heavy_modules() -> None:
    code = "import sys, appbook.cli; print(sorted(m for m in ('nbformat', 'sqlalchemy', 'pandas', 'jupyter_server') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_publish_list_rollback(tmp_path: Path) -> None:
    out = appbook(tmp_path, "publish", str(EXAMPLES)).stdout
    assert "published 1: cars, expenses, invoices, managers, suppliers" in out
    assert "create table invoices" in out
    assert "nothing to do" in appbook(tmp_path, "publish", str(EXAMPLES)).stdout
    listing = appbook(tmp_path, "publications").stdout
    assert "   1  " in listing and "cars, expenses, invoices, managers, suppliers" in listing
    proc = appbook(tmp_path, "rollback", "7", check=False)
    assert proc.returncode == 1 and "error: publication 7 does not exist" in proc.stderr
    # Only one app's folder: the others (empty here) are removed, and the output says so.
    only = appbook(tmp_path, "publish", str(EXAMPLES / "invoices")).stdout
    assert "published 2: invoices, suppliers" in only
    assert f"removed: cars, expenses, managers (not under {EXAMPLES / 'invoices'})" in only


def test_invalid_definition_exit_code_and_message(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.component.yaml").write_text("name: x\nfields:\n  a: {type: number, min: zero}\n")
    proc = appbook(tmp_path, "publish", str(folder), check=False)
    assert proc.returncode == 2
    assert 'x.component.yaml:3 fields.a.min: expected a number, got "zero"' in proc.stderr
    assert "no publications yet" in appbook(tmp_path, "publications").stdout


def test_records_import_and_export(tmp_path: Path) -> None:
    appbook(tmp_path, "publish", str(EXAMPLES))
    data = tmp_path / "suppliers.csv"
    data.write_text("name,email\nAcme,a@acme.example\nBeta,b@beta.example\n")
    assert (
        "imported 2 suppliers records"
        in appbook(tmp_path, "records", "import", "suppliers", str(data)).stdout
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("name,email\nAcme,x\nZ,not-an-email\n")
    proc = appbook(tmp_path, "records", "import", "suppliers", str(bad), check=False)
    assert proc.returncode == 1
    assert "row 2.email: 'not-an-email' is not a valid email address" in proc.stderr
    assert "row 1.name: must be at least 2 characters" not in proc.stderr
    out = tmp_path / "out.jsonl"
    appbook(tmp_path, "records", "export", "suppliers", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["name"] for r in rows] == ["Acme", "Beta"]


def test_schema_prints_json_schema(tmp_path: Path) -> None:
    schema = json.loads(appbook(tmp_path, "schema").stdout)
    assert "fields" in schema["properties"]


@pytest.mark.parametrize("args", [["publish", "/nonexistent"], ["rollback", "x"]])
def test_usage_errors_are_explained(tmp_path: Path, args: list[str]) -> None:
    proc = appbook(tmp_path, *args, check=False)
    assert proc.returncode == 2 and "Error:" in proc.stderr


def test_users_add_roles_list_remove(tmp_path: Path) -> None:
    out = appbook(tmp_path, "users", "add", "ada", "--role", "managers", "--role", "clerks").stdout
    assert "added ada (roles: managers, clerks)" in out
    appbook(tmp_path, "users", "add", "bob", "--email", "bob@example.org")
    assert (
        "ada: auditors" in appbook(tmp_path, "users", "roles", "ada", "--role", "auditors").stdout
    )
    listing = appbook(tmp_path, "users", "list").stdout.splitlines()
    assert [line.split()[:2] for line in listing] == [["ada", "auditors"], ["bob", "-"]]
    again = appbook(tmp_path, "users", "add", "ada", check=False)
    assert again.returncode == 1 and "error: user 'ada' already exists" in again.stderr
    bad = appbook(tmp_path, "users", "add", "eve", "--role", "Bad Role", check=False)
    assert bad.returncode == 1 and "roles: 'Bad Role'" in bad.stderr
    appbook(tmp_path, "users", "remove", "bob")
    assert "bob" not in appbook(tmp_path, "users", "list").stdout
    gone = appbook(tmp_path, "users", "remove", "bob", check=False)
    assert gone.returncode == 1 and "no user 'bob'" in gone.stderr


def test_run_a_workflow(tmp_path: Path) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "tasks.component.yaml").write_text(
        """\
name: tasks
fields:
  title: {type: string}
  done: {type: boolean, default: false}
workflows:
  close:
    stages:
      - name: s
        steps:
          - {name: check, if: "inputs.really == 'yes'", then: mark, else: stop}
          - {name: mark, update_field: {field: done, value: true}}
          - {name: stop, finish: {}}
"""
    )
    appbook(tmp_path, "publish", str(folder))
    (tmp_path / "t.jsonl").write_text('{"title": "Write the docs"}\n')
    appbook(tmp_path, "records", "import", "tasks", str(tmp_path / "t.jsonl"))
    out = appbook(tmp_path, "run", "tasks", "close", "--record", "1", "--param", "really=yes")
    assert "run 1: succeeded (check -> mark -> stop)" in out.stdout
    exported = appbook(tmp_path, "records", "export", "tasks", "-", "--format", "jsonl").stdout
    assert json.loads(exported.splitlines()[0])["done"] is True
    bad = appbook(tmp_path, "run", "tasks", "close", "--param", "oops", check=False)
    assert bad.returncode == 2 and "expected key=value" in bad.stderr
    missing = appbook(tmp_path, "run", "tasks", "nope", check=False)
    assert missing.returncode == 1 and "has no workflow 'nope'" in missing.stderr
