"""Named users for tests, each signing in with a token of their own.

``TokenUsers`` is jupyter_server's identity provider plus one token per name in ``users``:
``<name>-token`` signs in as ``name`` (in the ``Authorization: token ...`` header, or in
``?token=...`` once, after which the login cookie carries them, as with a password). The
server's own token still signs in its owner. The in-process test servers configure it
directly; ``appbook serve`` in a subprocess takes it by its dotted name
(``--ServerApp.identity_provider_class=tests.identities.TokenUsers``, with the checkout on
``PYTHONPATH``).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import List, Unicode


def token_of(name: str) -> str:
    """The token that signs in as ``name``."""
    return f"{name}-token"


class TokenUsers(IdentityProvider):
    """The owner's token as usual, plus ``<name>-token`` for each name in ``users``."""

    users = List(Unicode(), help="Who may sign in with their own token.").tag(config=True)

    async def get_user_token(self, handler: Any) -> User | None:
        """The named user whose token the request carries, else the owner's check."""
        token = self.get_token(handler)
        for name in self.users:
            if token == token_of(name):
                return User(username=name, name=name.title(), display_name=name.title())
        user: User | None = await super().get_user_token(handler)
        return user
