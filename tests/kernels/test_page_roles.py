"""A page's ``roles:`` in the kernel: every way into a page (buttons, action lists, dialogs,
script commands, ``show()``, a preheated page bound to its user) refuses a user without the
role, with the reason in the status line, and opens for a holder or a maker. Real widgets,
real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appbook.kernels.apprun import UNBOUND
from appbook.kernels.ui.page import AppView, show
from appbook.server.engine import Appbook, default_actor
from appbook.server.errors import Forbidden
from tests.kernels.test_car_dealership import DEALERSHIP, click

VAULT_YAML = """\
name: vault
fields:
  title: {type: string}
pages:
  home:
    layout:
      - field: title
      - button: {text: Secret, action: {open_page: secret}}
      - button: {text: Secret dialog, action: {open_page: secret, dialog: true}}
      - button: {text: Secret then set, action: [{open_page: secret}, {set: {title: opened}}]}
      - button: {text: Script page, action: {call: to_secret}}
      - button: {text: Script dialog, action: {call: secret_dialog}}
      - button: {text: Public dialog, action: {open_page: public, dialog: true}}
  secret:
    title: The vault
    roles: [auditors]
    layout:
      - label: inside
      - button: {text: Back, action: back}
  public:
    dialog: true
    layout:
      - button: {text: Into the vault, action: {open_page: secret}}
"""
VAULT_PY = """\
closed = []


def to_secret(context):
    context.commands.open_page("secret")


def secret_dialog(context):
    context.dialog("vault", "secret", on_close=lambda c: closed.append(c.page))
"""
REFUSED = "You need the role auditors to open The vault."


@pytest.fixture
def vault(app: Appbook, tmp_path: Path) -> Appbook:
    """The vault published, and its users: ada audits, carl does not, dev builds apps, old
    audited until disabled."""
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "vault.component.yaml").write_text(VAULT_YAML)
    (folder / "vault.py").write_text(VAULT_PY)
    app.publish(folder)
    app.users.add("ada", roles=["auditors"])
    app.users.add("carl", roles=["clerks"])
    app.users.add("dev", roles=["developer"])
    app.users.add("old", roles=["auditors"])
    app.users.disable("old")
    return app


@pytest.fixture
def opened() -> Iterator[list[AppView]]:
    """Apps the test opened, closed after it."""
    views: list[AppView] = []
    yield views
    for view in views:
        view.close()


def home(vault: Appbook, user: str, opened: list[AppView]) -> AppView:
    """The vault's home page, acting as ``user``."""
    view = show("vault", "home", app=vault.as_user(user), live=False)
    opened.append(view)
    return view


@pytest.mark.parametrize("user", ["carl", "old", "nobody"])
def test_a_button_to_a_page_the_user_may_not_open_says_why(
    vault: Appbook, opened: list[AppView], user: str
) -> None:
    view = home(vault, user, opened)
    click(view.current, "Secret")
    assert [p.name for p in view.stack] == ["home"]  # not built, not shown
    assert view.current.status.kind == "error" and view.current.status.text == REFUSED


@pytest.mark.parametrize("user", ["ada", "dev", default_actor()])
def test_holders_and_makers_open_it(vault: Appbook, opened: list[AppView], user: str) -> None:
    view = home(vault, user, opened)
    click(view.current, "Secret")
    assert [p.name for p in view.stack] == ["home", "secret"]
    click(view.current, "Back")
    click(view.current, "Secret dialog")
    assert view.dialog is not None and view.dialog.name == "secret"


def test_a_refused_dialog_does_not_open(vault: Appbook, opened: list[AppView]) -> None:
    view = home(vault, "carl", opened)
    click(view.current, "Secret dialog")
    assert view.dialog is None
    backdrop, layer = view.children[-2:]
    assert backdrop.layout.display == "none" and layer.layout.display == "none"
    assert view.current.status.text == REFUSED


def test_a_refused_page_stops_an_action_list(vault: Appbook, opened: list[AppView]) -> None:
    view = home(vault, "carl", opened)
    click(view.current, "Secret then set")
    form = view.current.form
    assert form is not None and form.values()["title"] in (None, "")  # the set never ran
    assert view.current.status.text == REFUSED
    ada = home(vault, "ada", opened)
    click(ada.current, "Secret then set")
    assert ada.current.name == "secret"


def test_script_commands_are_refused_the_same_way(vault: Appbook, opened: list[AppView]) -> None:
    view = home(vault, "carl", opened)
    click(view.current, "Script page")
    assert [p.name for p in view.stack] == ["home"]
    assert view.current.status.text == REFUSED
    click(view.current, "Script dialog")
    assert view.dialog is None and view.current.status.text == REFUSED
    # The refused dialog's on_close is not left behind for the next dialog to fire.
    click(view.current, "Public dialog")
    assert view.dialog is not None and view.dialog.name == "public"
    view.close_dialog()
    assert view.scripts.module("vault").closed == []


def test_inside_a_dialog_the_dialog_says_it(vault: Appbook, opened: list[AppView]) -> None:
    view = home(vault, "carl", opened)
    click(view.current, "Public dialog")
    dialog = view.dialog
    assert dialog is not None
    click(dialog, "Into the vault")
    assert view.dialog is dialog and dialog.status.text == REFUSED  # still open, told why
    assert [p.name for p in view.stack] == ["home"]


def test_show_of_a_refused_page_in_a_notebook(vault: Appbook, opened: list[AppView]) -> None:
    view = show("vault", "secret", app=vault.as_user("carl"), live=False)
    opened.append(view)
    assert view.stack == [] and view.refused == REFUSED.rstrip(".")
    page_box = view.children[1]
    (status,) = page_box.children
    assert status.text == REFUSED and "appbook-refused" in status._dom_classes
    view.refresh_pages()  # nothing to refresh, and no error
    with pytest.raises(Forbidden, match="You need the role auditors to open The vault"):
        view.current  # noqa: B018  (no page is open: say why, not IndexError)


def test_a_preheated_home_follows_the_user_it_is_bound_to(
    vault: Appbook, opened: list[AppView]
) -> None:
    # A kernel preheated for the app renders its first page as nobody; the signed-in user
    # is bound afterwards (appbook.kernels.apprun.run): the page's roles hold for them.
    acting = vault.as_user(UNBOUND)
    view = AppView(acting, "vault", "secret", live=False)
    opened.append(view)
    assert view.stack == [] and view.refused is not None
    acting.actor = "ada"
    view.user_bound()
    assert [p.name for p in view.stack] == ["secret"] and view.refused is None
    acting.actor = "carl"  # the other way round: a page built for someone else closes
    view.user_bound()
    assert view.stack == [] and view.refused == REFUSED.rstrip(".")


def test_the_dealership_managers_button(app: Appbook, opened: list[AppView]) -> None:
    app.publish(DEALERSHIP)
    app.users.add("carl")
    app.users.add("mona", roles=["managers"])
    carl = show("cars", "lot", app=app.as_user("carl"), live=False)
    opened.append(carl)
    click(carl.current, "Managers")
    assert (carl.current.component, carl.current.name) == ("cars", "lot")
    assert carl.current.status.text == (
        "You need the role managers to open Transaction specialists."
    )
    mona = show("cars", "lot", app=app.as_user("mona"), live=False)
    opened.append(mona)
    click(mona.current, "Managers")
    assert (mona.current.component, mona.current.name) == ("managers", "all")
    # The manager's form is the managers' too, not only the grid.
    form: Any = show("managers", "edit", app=app.as_user("carl"), live=False)
    opened.append(form)
    assert form.stack == [] and "Manager" in (form.refused or "")
