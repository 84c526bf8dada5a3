"""Who may open which page: a page's ``roles:``.

```yaml
pages:
  all:
    title: Transaction specialists
    roles: [managers]      # only users holding managers (or any one of the roles listed)
```

The rule, in :func:`may_open`: a page without ``roles`` opens for every app user; a page
with ``roles`` opens for a user holding at least one of them; makers (the server's owner,
or a user with the ``developer`` role) open every page, since they build the app. Roles are
those of Appbook's users table (``appbook users add ada --role managers``): a user who is not
registered, or is disabled, holds none.

The same rule is applied by the server before an app's kernel is used (a 403 page, and an
app index listing only what opens) and by the kernel whenever a page opens (navigation,
dialogs, script commands, ``show()`` in a notebook), so no way into a page skips it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .definitions.pages import PageDef
from .engine import default_actor
from .errors import NotFound
from .users import Users

MAKER_ROLE = "developer"


@dataclass(frozen=True)
class Viewer:
    """Who opens pages: a name, the roles that count for access, and whether a maker."""

    name: str
    roles: tuple[str, ...] = ()
    is_maker: bool = False


def may_open(page: PageDef, user_roles: Collection[str], is_maker: bool) -> bool:
    """Whether a user holding ``user_roles`` (a maker or not) may open ``page``."""
    if is_maker or not page.roles:
        return True
    return any(role in user_roles for role in page.roles)


def refusal(name: str, page: PageDef) -> str:
    """What a user who may not open ``page`` (called ``name``) is told: which role they
    need and the page's title, never who holds it."""
    roles = page.roles or []
    title = page.title or name
    if len(roles) == 1:
        return f"You need the role {roles[0]} to open {title}"
    return f"You need one of the roles {', '.join(roles)} to open {title}"


def maker(name: str, roles: Collection[str]) -> bool:
    """Whether ``name`` builds apps: the server's owner (the OS user the server and its
    kernels run as; token holders act as them) or a holder of the ``developer`` role."""
    return name == default_actor() or MAKER_ROLE in roles


def viewer(users: Users, name: str) -> Viewer:
    """``name`` as the access rule sees them: an enabled registered user's roles, none for
    an unknown or disabled user (disabled users keep their history, not their access)."""
    try:
        user = users.get(name)
    except NotFound:
        roles: tuple[str, ...] = ()
    else:
        roles = () if user.disabled else user.roles
    return Viewer(name, roles, maker(name, roles))


def check(users: Users, name: str, page_name: str, page: PageDef) -> str | None:
    """None when user ``name`` may open ``page``, else the message saying why not. Reads the
    users table only for pages that declare ``roles``."""
    if not page.roles:
        return None
    who = viewer(users, name)
    return None if may_open(page, who.roles, who.is_maker) else refusal(page_name, page)
