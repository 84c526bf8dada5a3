"""The ``appbook`` command line.

Commands import the engine lazily so ``appbook --help`` stays fast; nothing here imports
nbformat (which alone costs over a second to import).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

import click

from .server.errors import AppbookError, DefinitionError

if TYPE_CHECKING:
    from .server.engine import Appbook

F = TypeVar("F", bound=Callable[..., Any])


def data_options(func: F) -> F:
    """Options every data command shares (each also read from its APPBOOK_* variable)."""
    func = click.option(
        "--home", envvar="APPBOOK_HOME", help="Appbook home folder (default .appbook/)."
    )(func)
    return click.option(
        "--database-url", envvar="APPBOOK_DATABASE_URL", help="SQLAlchemy database URL."
    )(func)


@contextmanager
def engine(home: str | None, database_url: str | None) -> Iterator[Appbook]:
    """An engine for one command; engine errors become a message and exit status 1."""
    from .server.config import EngineConfig
    from .server.engine import Appbook

    try:
        app = Appbook(EngineConfig.from_values(home=home, database_url=database_url))
    except AppbookError as exc:
        fail(exc)
    try:
        yield app
    except AppbookError as exc:
        fail(exc)
    finally:
        app.close()


def fail(exc: AppbookError) -> None:
    """Print an engine error for a person and exit (2 for invalid definitions)."""
    click.echo(f"error: {exc.message}", err=True)
    sys.exit(2 if isinstance(exc, DefinitionError) else 1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="appbook")
def main() -> None:
    """Appbook: model data, build apps and automate processes inside Jupyter."""


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--port", type=int, default=8888, show_default=True, help="Port to listen on (loopback)."
)
@click.option("--no-browser", is_flag=True, default=True, help="Do not open a browser.")
@click.pass_context
def serve(ctx: click.Context, port: int, no_browser: bool) -> None:
    """Start JupyterLab with the Appbook extension (extra args go to jupyter_server)."""
    from .extension.app import AppbookApp

    argv = [f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1", *ctx.args]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")  # containers and CI run as root
    if no_browser:
        argv.append("--ServerApp.open_browser=False")
    AppbookApp.serve(argv)


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--allow-destructive", is_flag=True, help="Apply changes that drop or narrow data.")
@data_options
def publish(
    directory: Path, allow_destructive: bool, home: str | None, database_url: str | None
) -> None:
    """Validate every *.component.yaml under DIRECTORY and publish them together."""
    with engine(home, database_url) as app:
        history = app.publications()
        result = app.publish(directory, allow_destructive=allow_destructive)
    if not result.changed:
        click.echo(f"publication {result.number} already has this content; nothing to do")
        return
    click.echo(f"published {result.number}: {', '.join(result.components)}")
    # A publication is the whole folder: say so when it removes what was published before.
    gone = sorted(set(history[0].components) - set(result.components)) if history else []
    if gone:
        click.echo(f"removed: {', '.join(gone)} (not under {directory})")
    for line in result.migration:
        click.echo(f"  {line}")


@main.command()
@data_options
def publications(home: str | None, database_url: str | None) -> None:
    """List publications, newest first."""
    with engine(home, database_url) as app:
        rows = app.publications()
    if not rows:
        click.echo("no publications yet (run: appbook publish DIRECTORY)")
    for r in rows:
        when = r.created_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{r.number:>4}  {when}  {r.kind:<8}  {r.created_by:<12}  {', '.join(r.components)}"
        )


@main.command()
@click.argument("number", type=int)
@click.option("--allow-destructive", is_flag=True, help="Apply changes that narrow data.")
@data_options
def rollback(
    number: int, allow_destructive: bool, home: str | None, database_url: str | None
) -> None:
    """Publish again the definitions of publication NUMBER (data columns are kept)."""
    with engine(home, database_url) as app:
        result = app.rollback(number, allow_destructive=allow_destructive)
    verb = "rolled back to" if result.changed else "already at the content of"
    click.echo(f"{verb} publication {number} (now publication {result.number})")


@main.command()
@click.option("--indent", type=int, default=2, show_default=True)
def schema(indent: int) -> None:
    """Print the JSON Schema of component definition files."""
    from .server.definitions import json_schema

    click.echo(json.dumps(json_schema(), indent=indent))


@main.group()
def records() -> None:
    """Import and export records."""


@records.command("export")
@click.argument("component")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: from FILE's extension."
)
@click.option("--where", help='A JSON filter, e.g. \'{"amount": {"gt": 10}}\'.')
@data_options
def export_(
    component: str,
    file: str,
    fmt: str | None,
    where: str | None,
    home: str | None,
    database_url: str | None,
) -> None:
    """Write COMPONENT's records to FILE (- for stdout)."""
    from .server.bulk import detect_format, export_rows

    fmt = detect_format(file, fmt) if file != "-" else (fmt or "jsonl")
    try:
        condition = json.loads(where) if where else None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--where") from None
    with engine(home, database_url) as app, click.open_file(file, "w", encoding="utf-8") as out:
        count = export_rows(app, component, cast(TextIO, out), format=fmt, where=condition)
    click.echo(f"exported {count} {component} records", err=True)


@records.command("import")
@click.argument("component")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: from FILE's extension."
)
@data_options
def import_(
    component: str, file: Path, fmt: str | None, home: str | None, database_url: str | None
) -> None:
    """Validate every row of FILE, then insert them all into COMPONENT (or none)."""
    with engine(home, database_url) as app:
        result = app[component].import_rows(str(file), format=fmt)
    click.echo(f"imported {result.created} {component} records")


@main.group()
def db() -> None:
    """The engine's own database schema."""


@db.command("upgrade")
@data_options
def db_upgrade(home: str | None, database_url: str | None) -> None:
    """Bring the system tables to this version of Appbook (Alembic)."""
    from .server.config import EngineConfig
    from .server.db import create_engine
    from .server.schema import upgrade

    config = EngineConfig.from_values(home=home, database_url=database_url)
    try:
        click.echo(f"database at revision {upgrade(create_engine(config.database_url))}")
    except AppbookError as exc:
        fail(exc)


@main.group()
def files() -> None:
    """The encrypted file store."""


@files.command("rotate-key")
@click.option("--reencrypt", is_flag=True, help="Also rewrite every file under the new key.")
@data_options
def rotate_key(reencrypt: bool, home: str | None, database_url: str | None) -> None:
    """Start encrypting new files with a fresh key (old files stay readable)."""
    with engine(home, database_url) as app:
        key_id = app.file_store.keyring.rotate()
        click.echo(f"new key {key_id} is current")
        if reencrypt:
            click.echo(f"re-encrypted {app.file_store.reencrypt()} files")


@files.command("reencrypt")
@data_options
def reencrypt(home: str | None, database_url: str | None) -> None:
    """Rewrite every file not under the current key."""
    with engine(home, database_url) as app:
        click.echo(f"re-encrypted {app.file_store.reencrypt()} files")


@main.group()
def users() -> None:
    """Users and their roles (approvals and notifications refer to them)."""


@users.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="A role (repeat for several).")
@click.option("--display-name", default="", help="The name shown to people.")
@click.option("--email", default="", help="Where notifications go.")
@data_options
def users_add(
    name: str,
    roles: tuple[str, ...],
    display_name: str,
    email: str,
    home: str | None,
    database_url: str | None,
) -> None:
    """Register user NAME (the name the server's sign-in reports)."""
    with engine(home, database_url) as app:
        user = app.users.add(name, roles=roles, display_name=display_name, email=email)
        click.echo(f"added {user.name} (roles: {', '.join(user.roles) or 'none'})")


@users.command("roles")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="A role (repeat; none clears them).")
@data_options
def users_roles(
    name: str, roles: tuple[str, ...], home: str | None, database_url: str | None
) -> None:
    """Replace the roles of user NAME."""
    with engine(home, database_url) as app:
        user = app.users.set_roles(name, roles)
        click.echo(f"{user.name}: {', '.join(user.roles) or 'no roles'}")


@users.command("list")
@data_options
def users_list(home: str | None, database_url: str | None) -> None:
    """Every user, with roles."""
    with engine(home, database_url) as app:
        for user in app.users.all():
            state = " (disabled)" if user.disabled else ""
            roles = ", ".join(user.roles) or "-"
            click.echo(f"{user.name:<24} {roles:<30} {user.email}{state}")


@users.command("remove")
@click.argument("name")
@data_options
def users_remove(name: str, home: str | None, database_url: str | None) -> None:
    """Delete user NAME."""
    with engine(home, database_url) as app:
        app.users.remove(name)
        click.echo(f"removed {name}")


@main.command("run")
@click.argument("component")
@click.argument("workflow")
@click.option("--record", "record_id", type=int, help="The record the run is about.")
@click.option("--param", "params", multiple=True, help="An input, as key=value (repeat).")
@data_options
def run(
    component: str,
    workflow: str,
    record_id: int | None,
    params: tuple[str, ...],
    home: str | None,
    database_url: str | None,
) -> None:
    """Start COMPONENT's WORKFLOW and run it here until it ends or waits."""
    inputs: dict[str, str] = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{param!r}: expected key=value", param_hint="--param")
        inputs[key] = value
    # One run, one step at a time: a single warm kernel is enough (a server's workers keep
    # two). An explicit $APPBOOK_KERNEL_POOL_SIZE still wins.
    os.environ.setdefault("APPBOOK_KERNEL_POOL_SIZE", "1")
    with engine(home, database_url) as app:
        result = app[component].run_workflow(workflow, record_id=record_id, inputs=inputs)
        steps = " -> ".join(s["step"] for s in app.runs.steps(int(result["id"])))
        click.echo(f"run {result['id']}: {result['status']} ({steps})")
        if result["error"]:
            click.echo(f"  {result['error']}")
        if result["status"] == "failed":
            sys.exit(1)


# Sub-commands register themselves on `main` when imported.
from . import cli_runs, cli_secrets, cli_worker  # noqa: E402,F401
