"""``workflows`` and ``runs``: start runs, watch them, cancel, retry, approve or reject.

A run started, retried or approved here is only queued: executors take it from the database
(``Runs.claim``), so no step ever runs in the server process. Decisions act as the signed-in
user (``actor_name``); an approval refuses a user it does not wait for (403).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...server.errors import NotFound, ValidationError
from ...server.records import MAX_ID
from ...server.workflows import overview
from ..base import AppbookHandler
from ..models_runs import Decision, RunDetail, RunPage, StartRun, WorkflowList
from ..openapi import COLON, Param, operation

NAME = r"(?P<component>[a-z][a-z0-9_]*)"
WORKFLOW = r"(?P<workflow>[a-z][a-z0-9_]*)"
RUN = r"(?P<run_id>[0-9]+)"
TAGS = ("runs",)
RUN_ERRORS = (400, 403, 404, 409, 422, 503)
FILTERS = (
    Param("component", {"type": "string"}),
    Param("workflow", {"type": "string"}),
    Param("status", {"type": "string"}, "A status, or several comma-separated"),
    Param("record_id", {"type": "integer", "minimum": 1}),
    Param("before", {"type": "integer", "minimum": 1}, "next of the previous page"),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
)


def run_number(text: str) -> int:
    """A run id from the path (ids beyond BIGINT cannot exist)."""
    number = int(text)
    if not 0 < number <= MAX_ID:
        raise NotFound(f"no workflow run {text}")
    return number


class _RunsBase(AppbookHandler):
    """Shared reads: a run with its steps and the actions the signed-in user may take."""

    def detail(self, run_id: int) -> dict[str, Any]:
        """The run, described, with steps and actions (call in the pool)."""
        engine = self.engine
        run = engine.runs.get(run_id)
        steps = engine.runs.steps(run_id)
        shown = overview.describe(run, steps)
        shown["actions"] = overview.actions(engine, run, steps, engine.actor)
        return shown

    def wake(self) -> None:
        """Tell the server's workflow executor a run is due now (its next poll would find
        it anyway; this only saves the wait)."""
        executor = self.settings.get("appbook_workflow_executor")
        if executor is not None:
            executor.wake()

    def id_arg(self, name: str) -> int | None:
        """An id query argument: 400 when not an integer, 422 out of range."""
        value = self.int_arg(name)
        if value is not None and not 0 < value <= MAX_ID:
            raise ValidationError({name: [f"expected an id from 1 to {MAX_ID}, got {value}"]})
        return value


class StartHandler(_RunsBase):
    """Start a run of one workflow."""

    @web.authenticated
    @authorized
    @operation(
        "Start a run (queued for the executor), acting as the signed-in user",
        body=StartRun,
        response=RunDetail,
        status=201,
        errors=RUN_ERRORS,
        tags=TAGS,
    )
    async def post(self, component: str, workflow: str) -> None:
        """201 with the run and its ``Location``; 404 for an unknown workflow or record."""
        body = self.json_body(StartRun) if self.request.body else StartRun()
        if body.record_id is not None and not 0 < body.record_id <= MAX_ID:
            raise NotFound(f"no {component} record {body.record_id}")
        run = await self.run(
            self.engine.runs.start,
            component,
            workflow,
            record_id=body.record_id,
            inputs=body.inputs,
        )
        self.wake()
        shown = await self.run(self.detail, int(run["id"]))
        self.set_header("Location", f"/appbook/api/runs/{run['id']}")
        self.reply(shown, 201)


class WorkflowsHandler(_RunsBase):
    """Every published workflow."""

    @web.authenticated
    @authorized
    @operation(
        "Every component's workflows, with trigger and steps",
        response=WorkflowList,
        errors=(403, 503),
        tags=TAGS,
    )
    async def get(self) -> None:
        """``{"items": [...]}`` by component, then workflow."""
        self.reply({"items": await self.run(overview.workflows, self.engine)})


class RunsHandler(_RunsBase):
    """Runs, newest first."""

    @web.authenticated
    @authorized
    @operation(
        "Runs, newest first, filtered; next pages on", response=RunPage, params=FILTERS, tags=TAGS
    )
    async def get(self) -> None:
        """A page of runs and ``next`` (pass it as ``before``), None on the last page."""
        limit = self.int_arg("limit", 50)
        assert limit is not None
        if not 1 <= limit <= 1000:
            raise ValidationError({"limit": [f"expected 1 to 1000, got {limit}"]})
        rows = await self.run(
            self.engine.runs.query,
            component=self.get_argument("component", None) or None,
            workflow=self.get_argument("workflow", None) or None,
            status=overview.statuses(self.get_arguments("status") or None),
            record_id=self.id_arg("record_id"),
            before=self.id_arg("before"),
            limit=limit + 1,  # one more tells whether a next page exists
        )
        page = rows[:limit]
        more = len(rows) > limit
        self.reply(
            {
                "items": [overview.describe(r) for r in page],
                "next": int(page[-1]["id"]) if more else None,
            }
        )


class RunHandler(_RunsBase):
    """One run."""

    @web.authenticated
    @authorized
    @operation(
        "A run with its steps, duration and what you may do to it",
        response=RunDetail,
        errors=(403, 404, 503),
        tags=TAGS,
    )
    async def get(self, run_id: str) -> None:
        """The run; 404 if there is none."""
        self.reply(await self.run(self.detail, run_number(run_id)))


class CancelHandler(_RunsBase):
    """Cancel a run."""

    @web.authenticated
    @authorized
    @operation(
        "Cancel a run that has not ended (409 if it has)",
        response=RunDetail,
        errors=RUN_ERRORS,
        tags=TAGS,
    )
    async def post(self, run_id: str) -> None:
        """The cancelled run."""
        number = run_number(run_id)
        await self.run(self.engine.runs.cancel, number)
        self.reply(await self.run(self.detail, number))


class RetryHandler(_RunsBase):
    """Retry a failed run."""

    @web.authenticated
    @authorized
    @operation(
        "Queue a failed or timed-out run again at the step it failed in (409 otherwise)",
        response=RunDetail,
        errors=RUN_ERRORS,
        tags=TAGS,
    )
    async def post(self, run_id: str) -> None:
        """The run, queued again."""
        number = run_number(run_id)
        await self.run(self.engine.runs.retry, number)
        self.wake()
        self.reply(await self.run(self.detail, number))


class _DecideHandler(_RunsBase):
    approve = True

    async def decide(self, run_id: str) -> None:
        """The signed-in user decides; 403 if the approval is not theirs, 409 if none waits."""
        number = run_number(run_id)
        body = self.json_body(Decision) if self.request.body else Decision()
        engine = self.engine
        # Recorded here; the steps after it are the executor's (never the server's) to run.
        await self.run(
            engine.runs.decide,
            number,
            engine.actor,
            approve=self.approve,
            comment=body.comment,
            advance=False,
        )
        self.wake()
        self.reply(await self.run(self.detail, number))


class ApproveHandler(_DecideHandler):
    """Approve what a run waits for."""

    @web.authenticated
    @authorized
    @operation(
        "Approve the approval a run waits for, as the signed-in user "
        "(403 if it waits for someone else, 409 if it waits for none)",
        body=Decision,
        response=RunDetail,
        errors=RUN_ERRORS,
        tags=TAGS,
    )
    async def post(self, run_id: str) -> None:
        """The run after the decision."""
        await self.decide(run_id)


class RejectHandler(_DecideHandler):
    """Reject what a run waits for."""

    approve = False

    @web.authenticated
    @authorized
    @operation(
        "Reject the approval a run waits for, as the signed-in user "
        "(403 if it waits for someone else, 409 if it waits for none)",
        body=Decision,
        response=RunDetail,
        errors=RUN_ERRORS,
        tags=TAGS,
    )
    async def post(self, run_id: str) -> None:
        """The run after the decision."""
        await self.decide(run_id)


routes = [
    (r"/appbook/api/workflows", WorkflowsHandler),
    (rf"/appbook/api/workflows/{NAME}/{WORKFLOW}/runs", StartHandler),
    (r"/appbook/api/runs", RunsHandler),
    (rf"/appbook/api/runs/{RUN}", RunHandler),
    (rf"/appbook/api/runs/{RUN}{COLON}cancel", CancelHandler),
    (rf"/appbook/api/runs/{RUN}{COLON}retry", RetryHandler),
    (rf"/appbook/api/runs/{RUN}{COLON}approve", ApproveHandler),
    (rf"/appbook/api/runs/{RUN}{COLON}reject", RejectHandler),
]
