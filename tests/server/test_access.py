"""The rule of a page's ``roles:`` (appbook.server.access) and its publish-time checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from appbook.server import access
from appbook.server.definitions.pages import PageDef
from appbook.server.engine import Appbook, default_actor
from appbook.server.errors import DefinitionError

OPEN = PageDef(title="Cars", layout=[])
MANAGERS = PageDef(title="Managers", roles=["managers"], layout=[])
EITHER = PageDef(roles=["managers", "accounting"], layout=[])


@pytest.mark.parametrize(
    ("page", "roles", "maker", "opens"),
    [
        (OPEN, (), False, True),  # no roles: every app user
        (OPEN, ("clerks",), False, True),
        (MANAGERS, (), False, False),
        (MANAGERS, ("clerks",), False, False),
        (MANAGERS, ("clerks", "managers"), False, True),
        (MANAGERS, (), True, True),  # makers open every page
        (EITHER, ("accounting",), False, True),  # one of the roles is enough
        (EITHER, ("Managers",), False, False),  # roles are compared exactly
    ],
)
def test_may_open(page: PageDef, roles: tuple[str, ...], maker: bool, opens: bool) -> None:
    assert access.may_open(page, roles, maker) is opens


def test_the_refusal_names_the_roles_and_the_page() -> None:
    assert access.refusal("all", MANAGERS) == "You need the role managers to open Managers"
    assert access.refusal("grid", EITHER) == (
        "You need one of the roles managers, accounting to open grid"  # no title: its name
    )


def test_makers_are_the_owner_and_developers() -> None:
    assert access.maker(default_actor(), ())
    assert access.maker("ada", ("developer",))
    assert not access.maker("ada", ("managers",))


def test_viewer_counts_the_roles_of_enabled_registered_users(app: Appbook) -> None:
    app.users.add("ada", roles=["managers"])
    app.users.add("dev", roles=["developer"])
    app.users.add("old", roles=["managers", "developer"])
    app.users.disable("old")
    assert access.viewer(app.users, "ada") == access.Viewer("ada", ("managers",), False)
    assert access.viewer(app.users, "dev").is_maker
    assert access.viewer(app.users, "old") == access.Viewer("old", (), False)  # disabled
    assert access.viewer(app.users, "nobody") == access.Viewer("nobody", (), False)
    assert access.viewer(app.users, default_actor()).is_maker  # the owner, registered or not


def test_check(app: Appbook) -> None:
    app.users.add("ada", roles=["managers"])
    app.users.add("bob", roles=["clerks"])
    assert access.check(app.users, "ada", "all", MANAGERS) is None
    assert access.check(app.users, "bob", "all", MANAGERS) == (
        "You need the role managers to open Managers"
    )
    assert access.check(app.users, "bob", "cars", OPEN) is None


def write(folder: Path, roles: str) -> Path:
    folder.mkdir()
    (folder / "vault.component.yaml").write_text(
        "name: vault\nfields:\n  title: {type: string}\npages:\n  all:\n"
        f"    title: Vault\n    roles: {roles}\n    layout:\n      - field: title\n"
    )
    return folder


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ("[]", "list at least one role, or leave roles out"),
        ("[Managers]", "'Managers' is not a role name: lower-case letters"),
        ("[managers, 'a b']", "'a b' is not a role name"),
        ("managers", "valid list"),
    ],
)
def test_bad_roles_are_refused_at_publish_with_file_and_line(
    app: Appbook, tmp_path: Path, roles: str, message: str
) -> None:
    with pytest.raises(DefinitionError) as refused:
        app.publish(write(tmp_path / "defs", roles))
    text = str(refused.value)
    assert "vault.component.yaml:7 pages.all.roles" in text and message in text, text
    assert "vault" not in app.components()  # nothing published


def test_declared_roles_publish(app: Appbook, tmp_path: Path) -> None:
    app.publish(write(tmp_path / "defs", "[managers, accounting]"))
    pages = app["vault"].definition.pages or {}
    assert pages["all"].roles == ["managers", "accounting"]
