"""Users and roles: who may approve a workflow step, who is notified, and (with the access
issue) who may open what.

Appbook does not authenticate anyone: jupyter_server's identity provider does, and the
name it reports is the user's name here. This table says what Appbook knows about them:
a display name, an e-mail address for notifications, and roles.

>>> app.users.add("ada", roles=["managers"], email="ada@example.org")
>>> app.users.with_role("managers")
[User(name='ada', ...)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .db import read_transaction, write_transaction
from .errors import Conflict, NotFound, ValidationError
from .systables import USERS, utcnow

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}")
ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,59}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class User:
    """One user as Appbook knows them."""

    name: str
    roles: tuple[str, ...] = ()
    display_name: str = ""
    email: str = ""
    disabled: bool = False
    created_at: datetime | None = field(default=None, compare=False)
    created_by: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "roles": list(self.roles),
            "display_name": self.display_name,
            "email": self.email,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
        }


class Users:
    """The users table of one data layer, written as ``actor``."""

    def __init__(self, engine: Engine, actor: str) -> None:
        self.engine, self.actor = engine, actor

    def add(
        self,
        name: str,
        *,
        roles: Iterable[str] = (),
        display_name: str = "",
        email: str = "",
    ) -> User:
        """Register ``name``; Conflict if it exists, ValidationError naming each bad value."""
        roles = _check(name, roles, email)
        with write_transaction(self.engine) as conn:
            if conn.execute(sa.select(USERS.c.name).where(USERS.c.name == name)).first():
                raise Conflict(f"user {name!r} already exists", field="name")
            conn.execute(
                USERS.insert().values(
                    name=name,
                    display_name=display_name,
                    email=email,
                    roles=list(roles),
                    disabled=False,
                    created_at=utcnow(),
                    created_by=self.actor,
                )
            )
        return self.get(name)

    def get(self, name: str) -> User:
        """The user called ``name``, or NotFound."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(sa.select(USERS).where(USERS.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"no user {name!r}")
        return _user(row)

    def all(self) -> list[User]:
        """Every user, by name."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(sa.select(USERS).order_by(USERS.c.name)).mappings().all()
        return [_user(r) for r in rows]

    def with_role(self, role: str) -> list[User]:
        """Enabled users holding ``role`` (an approval step waits for one of them)."""
        return [u for u in self.all() if role in u.roles and not u.disabled]

    def set_roles(self, name: str, roles: Iterable[str]) -> User:
        """Replace the roles of ``name``."""
        roles = _check(name, roles, "")
        self._update(name, roles=list(roles))
        return self.get(name)

    def disable(self, name: str, disabled: bool = True) -> User:
        """Disable (or enable again) ``name``; a disabled user keeps their history."""
        self._update(name, disabled=disabled)
        return self.get(name)

    def remove(self, name: str) -> None:
        """Delete ``name`` (NotFound if there is no such user)."""
        with write_transaction(self.engine) as conn:
            if not conn.execute(USERS.delete().where(USERS.c.name == name)).rowcount:
                raise NotFound(f"no user {name!r}")

    def _update(self, name: str, **values: Any) -> None:
        with write_transaction(self.engine) as conn:
            result = conn.execute(USERS.update().where(USERS.c.name == name).values(**values))
            if not result.rowcount:
                raise NotFound(f"no user {name!r}")


def _check(name: str, roles: Iterable[str], email: str) -> tuple[str, ...]:
    roles = tuple(dict.fromkeys(roles))  # in order, once each
    errors: dict[str, list[str]] = {}
    if not USER_NAME.fullmatch(name):
        errors["name"] = [
            f"{name!r}: letters, digits and . _ @ + - (starting with a letter or digit), "
            "200 characters at most"
        ]
    bad = [r for r in roles if not ROLE_NAME.fullmatch(r)]
    if bad:
        errors["roles"] = [
            f"{r!r}: lower-case letters, digits, _ and - (starting with a letter)" for r in bad
        ]
    if email and not EMAIL.fullmatch(email):
        errors["email"] = [f"{email!r} is not an e-mail address"]
    if errors:
        raise ValidationError(errors, where=f"user {name!r}")
    return roles


def _user(row: Any) -> User:
    return User(
        name=row["name"],
        roles=tuple(row["roles"] or ()),
        display_name=row["display_name"],
        email=row["email"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
    )
