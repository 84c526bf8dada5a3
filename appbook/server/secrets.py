"""Secrets for outside services (an SMTP password, an API token), encrypted at rest.

Values live in ``appbook_secrets``, each sealed with the file store's :class:`KeyRing`
(AES-256-GCM under a key derived for that secret's name, so a value copied to another name
does not decrypt) with the id of the key that sealed it. Rotating the ring keeps older
secrets readable; setting a secret again seals it under the current key.

A value is only ever returned by :meth:`Secrets.get`: it is never logged, never part of an
error message, and callers keep it out of run records and step outputs.

>>> app.secrets.set("smtp", "s3cret")
>>> app.secrets.get("smtp")
's3cret'
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .db import read_transaction, write_transaction
from .errors import NotFound, ValidationError
from .files.crypto import KeyRing
from .systables import SECRETS, utcnow

log = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,199}")
MAX_VALUE = 64 * 1024  # characters; a secret is a password or a token, not a document


class Secrets:
    """The secret store of one data layer, written as ``actor``."""

    def __init__(self, engine: Engine, keyring: Callable[[], KeyRing], actor: str) -> None:
        """``keyring`` is called when a value is sealed or opened (the key file is read then)."""
        self.engine, self._keyring, self.actor = engine, keyring, actor

    def __repr__(self) -> str:
        return f"<Secrets {len(self.names())} names>"

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` (replacing any value it had), sealed with the
        current key. ValidationError for a bad name or value (never quoting the value)."""
        check_name(name)
        _check_value(name, value)
        keyring = self._keyring()
        key_id = keyring.current_id
        sealed = b"".join(keyring.encrypt([value.encode()], context=_context(name), key_id=key_id))
        values = {
            "value": sealed,
            "key_id": key_id,
            "updated_at": utcnow(),
            "updated_by": self.actor,
        }
        with write_transaction(self.engine) as conn:
            found = conn.execute(sa.select(SECRETS.c.name).where(SECRETS.c.name == name)).first()
            if found:
                conn.execute(SECRETS.update().where(SECRETS.c.name == name).values(**values))
            else:
                conn.execute(SECRETS.insert().values(name=name, **values))
        log.info("secret %r set by %s (key %s)", name, self.actor, key_id)

    def get(self, name: str) -> str:
        """The value of ``name``; NotFound naming it and the command that sets it."""
        check_name(name)
        with read_transaction(self.engine) as conn:
            sealed = conn.execute(sa.select(SECRETS.c.value).where(SECRETS.c.name == name)).scalar()
        if sealed is None:
            raise NotFound(
                f"no secret {name!r}; set it with: appbook secrets set {name} "
                f"(or app.secrets.set({name!r}, value))"
            )
        chunks = self._keyring().decrypt(io.BytesIO(bytes(sealed)), context=_context(name))
        return b"".join(chunks).decode()

    def names(self) -> list[str]:
        """The names of every secret, sorted (never their values)."""
        with read_transaction(self.engine) as conn:
            return list(conn.execute(sa.select(SECRETS.c.name).order_by(SECRETS.c.name)).scalars())

    def key_id(self, name: str) -> str:
        """The id of the key ``name`` is sealed with (NotFound if there is no such secret)."""
        with read_transaction(self.engine) as conn:
            found = conn.execute(sa.select(SECRETS.c.key_id).where(SECRETS.c.name == name)).scalar()
        if found is None:
            raise NotFound(f"no secret {name!r}")
        return str(found)

    def remove(self, name: str) -> None:
        """Delete ``name`` (NotFound if there is no such secret)."""
        with write_transaction(self.engine) as conn:
            if not conn.execute(SECRETS.delete().where(SECRETS.c.name == name)).rowcount:
                raise NotFound(f"no secret {name!r}")
        log.info("secret %r removed by %s", name, self.actor)


def _context(name: str) -> bytes:
    # Distinct from file ids (the other users of the ring) and bound to the name.
    return b"appbook secret\x00" + name.encode()


def check_name(name: object) -> None:
    """ValidationError unless ``name`` is a valid secret name (it never quotes a value)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        shown = name if isinstance(name, str) else type(name).__name__
        raise ValidationError(
            {
                "name": [
                    f"{shown!r}: letters, digits and . _ - (starting with a letter), "
                    "200 characters at most"
                ]
            },
            where="secret",
        )


def _check_value(name: str, value: object) -> None:
    if not isinstance(value, str):
        problem = f"must be text, not {type(value).__name__}"
    elif not value:
        problem = "must not be empty"
    elif len(value) > MAX_VALUE:
        problem = f"is {len(value)} characters, at most {MAX_VALUE} are allowed"
    else:
        return
    raise ValidationError({"value": [problem]}, where=f"secret {name!r}")
