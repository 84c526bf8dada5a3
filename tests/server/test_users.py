"""Users and roles on SQLite and PostgreSQL: add, roles, disable, remove, bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from appbook.server.engine import Appbook
from appbook.server.errors import Conflict, NotFound, ValidationError
from appbook.server.schema import HEAD, VERSION_TABLE, upgrade


def test_add_find_by_role_change_and_remove(app: Appbook) -> None:
    ada = app.users.add("ada", roles=["managers", "clerks", "managers"], email="ada@example.org")
    assert ada.roles == ("managers", "clerks") and ada.created_by == "tester"
    app.users.add("bob@example.org", roles=["clerks"], display_name="Bob")
    assert [u.name for u in app.users.all()] == ["ada", "bob@example.org"]
    assert [u.name for u in app.users.with_role("clerks")] == ["ada", "bob@example.org"]
    app.users.disable("bob@example.org")
    assert [u.name for u in app.users.with_role("clerks")] == ["ada"]  # disabled: not asked
    assert app.users.set_roles("ada", ["auditors"]).roles == ("auditors",)
    assert app.users.with_role("managers") == []
    app.users.remove("ada")
    with pytest.raises(NotFound, match="no user 'ada'"):
        app.users.get("ada")
    with pytest.raises(NotFound):
        app.users.remove("ada")


def test_bad_input_names_each_problem_and_writes_nothing(app: Appbook) -> None:
    with pytest.raises(ValidationError) as info:
        app.users.add(" spaced name", roles=["Managers", "ok"], email="not-an-address")
    assert set(info.value.errors) == {"name", "roles", "email"}
    assert "'Managers'" in info.value.errors["roles"][0]
    assert app.users.all() == []
    app.users.add("ada")
    with pytest.raises(Conflict, match="user 'ada' already exists"):
        app.users.add("ada", roles=["x"])
    assert app.users.get("ada").roles == ()


def test_a_database_from_before_users_upgrades(app: Appbook) -> None:
    with app.engine.begin() as conn:  # as revision 0001 left it
        later = (
            "appbook_dataflow_runs",
            "appbook_secrets",
            "appbook_leases",
            "appbook_cursors",
            "appbook_sources",
        )
        for table in (*later, "appbook_step_runs", "appbook_runs", "appbook_users"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
        conn.execute(sa.text("ALTER TABLE appbook_publications DROP COLUMN sources"))
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0001'"))
    assert upgrade(app.engine) == HEAD
    app.users.add("ada", roles=["managers"])
    assert app.users.get("ada").roles == ("managers",)
