"""``appbook runs list|show|cancel|retry`` and ``appbook approve|reject``: runs from a shell.

Registered by importing this module at the end of :mod:`appbook.cli`; like it, the engine is
imported only inside commands so ``appbook --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from .cli import data_options, engine, main

if TYPE_CHECKING:
    from .server.engine import Appbook


@main.group()
def runs() -> None:
    """Workflow runs: list, show, cancel, retry (approve and reject are their own commands)."""


@runs.command("list")
@click.option("--component", help="Only runs of this component.")
@click.option("--workflow", help="Only runs of this workflow.")
@click.option("--status", "status", multiple=True, help="A status, or several (repeat or a,b).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@data_options
def runs_list(
    component: str | None,
    workflow: str | None,
    status: tuple[str, ...],
    limit: int,
    as_json: bool,
    home: str | None,
    database_url: str | None,
) -> None:
    """Runs, newest first."""
    from .server.workflows import overview

    with engine(home, database_url) as app:
        found = app.runs.query(
            component=component,
            workflow=workflow,
            status=overview.statuses(status or None),
            limit=limit,
        )
        shown = [overview.describe(r) for r in found]
    if as_json:
        for run in shown:
            click.echo(json.dumps(run, default=str))
        return
    if not shown:
        click.echo("no runs")
    for run in shown:
        click.echo(_run_line(run))


@runs.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="The run and its steps as JSON.")
@data_options
def runs_show(run_id: int, as_json: bool, home: str | None, database_url: str | None) -> None:
    """A run and its steps (status, attempt, duration, error)."""
    with engine(home, database_url) as app:
        shown = _detail(app, run_id)
    if as_json:
        click.echo(json.dumps(shown, default=str, indent=2))
        return
    click.echo(_run_line(shown))
    click.echo(f"  started by {shown['created_by']} ({shown['trigger']})")
    if shown["record_id"] is not None:
        click.echo(f"  record {shown['record_id']}")
    if shown["waiting_for"]:
        wait = shown["waiting_for"]
        who = wait.get("user") or f"a user with role {wait.get('role')}"
        click.echo(f"  waiting in {wait['step']} for {who}")
    if shown["error"]:
        click.echo(f"  error: {shown['error']}")
    for step in shown["steps"]:
        click.echo(_step_line(step))
    if shown["actions"]:
        click.echo(f"  you can: {', '.join(shown['actions'])}")


@runs.command("cancel")
@click.argument("run_id", type=int)
@data_options
def runs_cancel(run_id: int, home: str | None, database_url: str | None) -> None:
    """Cancel a run that has not ended."""
    with engine(home, database_url) as app:
        run = app.runs.cancel(run_id)
    click.echo(f"run {run['id']}: {run['status']}")


@runs.command("retry")
@click.argument("run_id", type=int)
@data_options
def runs_retry(run_id: int, home: str | None, database_url: str | None) -> None:
    """Queue a failed or timed-out run again at the step it failed in (an executor runs it)."""
    with engine(home, database_url) as app:
        run = app.runs.retry(run_id)
    click.echo(f"run {run['id']}: {run['status']} at step {run['step']}")


def _decision(approve: bool) -> Any:
    verb = "Approve" if approve else "Reject"

    @click.argument("run_id", type=int)
    @click.option("--comment", default="", help="Kept with the decision.")
    @click.option("--user", help="Who decides (default: you, the OS user).")
    @data_options
    def decide(
        run_id: int,
        comment: str,
        user: str | None,
        home: str | None,
        database_url: str | None,
    ) -> None:
        with engine(home, database_url) as app:
            who = user or app.actor
            run = app.runs.decide(run_id, who, approve=approve, comment=comment)
        click.echo(f"run {run['id']}: {'approved' if approve else 'rejected'} by {who}")
        click.echo(
            f"run {run['id']}: {run['status']}" + (f" ({run['error']})" if run["error"] else "")
        )

    decide.__doc__ = (
        f"{verb} the approval run RUN_ID waits for (as --user, who must be the user it "
        "names or hold its role); the run then goes on here until it ends or waits."
    )
    return decide


main.command("approve")(_decision(True))
main.command("reject")(_decision(False))


def _detail(app: Appbook, run_id: int) -> dict[str, Any]:
    from .server.workflows import overview

    run = app.runs.get(run_id)
    steps = app.runs.steps(run_id)
    shown = overview.describe(run, steps)
    shown["actions"] = overview.actions(app, run, steps, app.actor)
    return shown


def _run_line(run: dict[str, Any]) -> str:
    from .server.workflows.overview import format_duration

    started = run["created_at"].strftime("%Y-%m-%d %H:%M:%S")
    flow = f"{run['component']}/{run['workflow']}"
    where = f"at {run['step']}" if run["step"] and run["status"] != "succeeded" else ""
    return (
        f"{run['id']:>6}  {run['status']:<10} {flow:<28} {run['created_by']:<12} "
        f"{started}  {format_duration(run['duration']):>8}  {where}"
    ).rstrip()


def _step_line(step: dict[str, Any]) -> str:
    from .server.workflows.overview import format_duration

    line = (
        f"    {step['step']:<20} {step['status']:<10} attempt {step['attempt']:<3} "
        f"{format_duration(step['duration']):>8}"
    )
    return f"{line}  {step['error']}" if step["error"] else line
