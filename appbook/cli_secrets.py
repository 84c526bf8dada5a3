"""``appbook secrets``: set, list and remove secrets for outside services.

A value is read from standard input (``printf %s "$TOKEN" | appbook secrets set api``) or
from a hidden prompt, never from an argument, so it stays out of shell history and ``ps``.
"""

from __future__ import annotations

import sys

import click

from .cli import data_options, engine, fail, main


@main.group()
def secrets() -> None:
    """Secrets for outside services (SMTP password, API tokens), encrypted at rest."""


@secrets.command("set")
@click.argument("name")
@data_options
def secrets_set(name: str, home: str | None, database_url: str | None) -> None:
    """Store secret NAME; the value comes from standard input or a hidden prompt."""
    from .server.errors import AppbookError
    from .server.secrets import check_name

    try:
        check_name(name)  # before asking for a value that would be thrown away
    except AppbookError as exc:
        fail(exc)
    if sys.stdin.isatty():
        value = click.prompt(
            f"value of {name}", hide_input=True, confirmation_prompt=True, prompt_suffix=": "
        )
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value  # echo adds one
        value = value[:-1] if value.endswith("\r") else value
    with engine(home, database_url) as app:
        app.secrets.set(name, value)
    click.echo(f"secret {name} set")


@secrets.command("list")
@data_options
def secrets_list(home: str | None, database_url: str | None) -> None:
    """The names of the secrets (never their values)."""
    with engine(home, database_url) as app:
        names = app.secrets.names()
    if not names:
        click.echo("no secrets yet (run: appbook secrets set NAME)")
    for name in names:
        click.echo(name)


@secrets.command("remove")
@click.argument("name")
@data_options
def secrets_remove(name: str, home: str | None, database_url: str | None) -> None:
    """Delete secret NAME."""
    with engine(home, database_url) as app:
        app.secrets.remove(name)
    click.echo(f"removed secret {name}")
