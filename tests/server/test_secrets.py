"""The secret store on SQLite and PostgreSQL: sealed at rest, bound to its name, readable
after key rotation, clear errors that never quote a value; and ``appbook secrets``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from appbook.server.engine import Appbook
from appbook.server.errors import CorruptFile, NotFound, ValidationError
from appbook.server.systables import SECRETS

VALUE = "correct-horse-battery-staple-7731"


def stored(app: Appbook, name: str) -> dict[str, object]:
    with app.engine.connect() as conn:
        row = conn.execute(sa.select(SECRETS).where(SECRETS.c.name == name)).mappings().one()
    return dict(row)


def test_set_get_list_remove(app: Appbook) -> None:
    app.secrets.set("smtp", VALUE)
    app.secrets.set("api.token", "t-1")
    assert app.secrets.get("smtp") == VALUE
    assert app.secrets.names() == ["api.token", "smtp"]
    app.secrets.set("api.token", "t-2")  # replaced, still one row
    assert app.secrets.get("api.token") == "t-2"
    assert app.secrets.names() == ["api.token", "smtp"]
    app.secrets.remove("api.token")
    assert app.secrets.names() == ["smtp"]
    with pytest.raises(NotFound, match=r"no secret 'api\.token'"):
        app.secrets.remove("api.token")


def test_values_are_sealed_with_a_key_id_and_audited(app: Appbook) -> None:
    app.secrets.set("smtp", VALUE)
    row = stored(app, "smtp")
    assert VALUE.encode() not in bytes(row["value"])  # type: ignore[arg-type]
    assert row["key_id"] == app.file_store.keyring.current_id
    assert row["updated_by"] == "tester"
    assert repr(app.secrets) == "<Secrets 1 names>"


def test_rotation_keeps_old_secrets_readable(app: Appbook) -> None:
    app.secrets.set("old", "before rotation")
    first = app.secrets.key_id("old")
    second = app.file_store.keyring.rotate()
    app.secrets.set("new", "after rotation")
    assert app.secrets.key_id("old") == first != second == app.secrets.key_id("new")
    assert app.secrets.get("old") == "before rotation"
    assert app.secrets.get("new") == "after rotation"
    app.secrets.set("old", "resealed")
    assert app.secrets.key_id("old") == second


def test_a_value_copied_to_another_name_does_not_open(app: Appbook) -> None:
    app.secrets.set("a", VALUE)
    app.secrets.set("b", "other")
    sealed = stored(app, "a")["value"]
    with app.engine.begin() as conn:
        conn.execute(SECRETS.update().where(SECRETS.c.name == "b").values(value=sealed))
    with pytest.raises(CorruptFile) as caught:
        app.secrets.get("b")
    assert VALUE not in str(caught.value)


def test_missing_secret_names_the_command_to_set_it(app: Appbook) -> None:
    with pytest.raises(NotFound) as caught:
        app.secrets.get("smtp")
    assert caught.value.message == (
        "no secret 'smtp'; set it with: appbook secrets set smtp "
        "(or app.secrets.set('smtp', value))"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "''"),
        ("has space", "'has space'"),
        ("1starts-with-digit", "'1starts-with-digit'"),
        ("x" * 201, "200 characters at most"),
        ("semi;colon", "'semi;colon'"),
    ],
)
def test_bad_names_are_refused_and_nothing_is_written(
    app: Appbook, name: str, expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        app.secrets.set(name, VALUE)
    assert "name" in caught.value.errors
    assert expected in caught.value.message
    assert VALUE not in caught.value.message
    assert app.secrets.names() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "must not be empty"),
        (b"bytes", "must be text, not bytes"),
        ("y" * 70000, "is 70000 characters, at most 65536 are allowed"),
    ],
)
def test_bad_values_are_refused_without_quoting_them(
    app: Appbook, value: object, expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        app.secrets.set("smtp", value)  # type: ignore[arg-type]
    assert caught.value.errors == {"value": [expected]}
    assert "bytes'" not in caught.value.message and "yyyy" not in caught.value.message
    assert app.secrets.names() == []


def test_values_never_reach_the_log(app: Appbook, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        app.secrets.set("smtp", VALUE)
        app.secrets.get("smtp")
        app.secrets.remove("smtp")
    assert "secret 'smtp' set by tester" in caplog.text
    assert VALUE not in caplog.text


# -- the command line ---------------------------------------------------------------------
def appbook(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APPBOOK_HOME": str(tmp_path / "home")}
    env.pop("APPBOOK_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "appbook", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_cli_sets_from_stdin_lists_names_and_removes(tmp_path: Path) -> None:
    done = appbook(tmp_path, "secrets", "set", "smtp", stdin=VALUE + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "secret smtp set\n"
    listed = appbook(tmp_path, "secrets", "list")
    assert listed.stdout == "smtp\n"
    assert VALUE not in done.stdout + done.stderr + listed.stdout + listed.stderr
    from appbook.server.config import EngineConfig

    with Appbook(EngineConfig.from_values(home=str(tmp_path / "home"))) as app:
        assert app.secrets.get("smtp") == VALUE  # the echo's newline was dropped
    assert appbook(tmp_path, "secrets", "remove", "smtp").stdout == "removed secret smtp\n"
    assert appbook(tmp_path, "secrets", "list").stdout.startswith("no secrets yet")


def test_cli_takes_no_value_argument_and_refuses_bad_input(tmp_path: Path) -> None:
    extra = appbook(tmp_path, "secrets", "set", "smtp", VALUE)
    assert extra.returncode == 2 and "unexpected extra argument" in extra.stderr.lower()
    bad = appbook(tmp_path, "secrets", "set", "bad name", stdin=VALUE)
    assert bad.returncode == 1
    assert "error: secret: invalid values (name: 'bad name'" in bad.stderr
    empty = appbook(tmp_path, "secrets", "set", "smtp", stdin="")
    assert empty.returncode == 1 and "value: must not be empty" in empty.stderr
    missing = appbook(tmp_path, "secrets", "remove", "smtp")
    assert missing.returncode == 1 and "error: no secret 'smtp'" in missing.stderr
    assert appbook(tmp_path, "secrets", "list").stdout.startswith("no secrets yet")
