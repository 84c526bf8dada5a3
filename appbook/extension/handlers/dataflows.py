"""``dataflows/{component}/{name}``: run a dataflow, read its run log.

A dataflow with ``script`` steps (its own or those of dataflows it calls) never runs in
the server process: it goes to a child process with a time and memory limit
(:mod:`appbook.server.dataflows.isolate`; tornado settings ``appbook_dataflow_seconds`` and
``appbook_dataflow_memory`` override the defaults). Others run in the engine pool, acting as
the signed-in user.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict, Field
from tornado import web

from ...server.dataflows import DataflowResult, definition_of, run
from ...server.dataflows.isolate import MEMORY, SECONDS, run_isolated
from ...server.dataflows.log import runs
from ...server.dataflows.scripts import script_components
from ...server.errors import ValidationError
from ...server.records import MAX_ID
from ..base import AppbookHandler
from ..openapi import Param, operation

COMPONENT = r"(?P<component>[a-z][a-z0-9_]*)"
DATAFLOW = r"(?P<name>[a-z][a-z0-9_]*)"
TAGS = ("dataflows",)


class RunBody(BaseModel):
    """What to run a dataflow with."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict, description="The dataflow's inputs.")
    record: int | dict[str, Any] | None = Field(
        None, description="A record id (read in the run) or record values (action_model)."
    )


class RunResult(BaseModel):
    """What a run gave back."""

    value: Any = Field(None, description="The value of its respond step.")
    actions: list[dict[str, Any]] = Field(description="Form actions for the calling page.")
    run_id: int | None = Field(None, description="Its entry in the run log.")
    steps: list[dict[str, Any]] = Field(description="Items in and out of each step.")
    peak_deferred: int = Field(0, description="Most deferred updates queued at once.")
    files: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Files stored by export_file steps, by step."
    )


class RunLog(BaseModel):
    """A page of the run log, newest first."""

    items: list[dict[str, Any]]
    next: int | None = Field(None, description="Pass as before for the next page.")


class RunHandler(AppbookHandler):
    """Run one dataflow."""

    @web.authenticated
    @authorized
    @operation(
        "Run a dataflow as the signed-in user (scripts in a child process with limits)",
        body=RunBody,
        response=RunResult,
        errors=(400, 403, 404, 409, 422, 500, 503),
        tags=TAGS,
    )
    async def post(self, component: str, name: str) -> None:
        """200 with the respond value and form actions; the failing step's error otherwise
        (its message names stage, step and item; nothing was written)."""
        body = self.json_body(RunBody) if self.request.body else RunBody()
        result = await self.run(self.execute, component, name, body)
        self.reply(result.to_dict())

    def execute(self, component: str, name: str, body: RunBody) -> DataflowResult:
        """Run here, or in a child when the dataflow runs scripts (call in the pool)."""
        engine = self.engine
        definition_of(engine, component, name)
        if script_components(engine, component, name):
            return run_isolated(
                engine,
                component,
                name,
                inputs=body.inputs,
                record=body.record,
                seconds=float(self.settings.get("appbook_dataflow_seconds", SECONDS)),
                memory=int(self.settings.get("appbook_dataflow_memory", MEMORY)),
            )
        return run(engine, component, name, inputs=body.inputs, record=body.record, via="rest")


class RunsHandler(AppbookHandler):
    """The run log of one dataflow."""

    @web.authenticated
    @authorized
    @operation(
        "The dataflow's runs, newest first: who, when, duration, items per step, error",
        response=RunLog,
        params=(
            Param("before", {"type": "integer", "minimum": 1}, "next of the previous page"),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
        ),
        errors=(400, 403, 404, 422, 503),
        tags=TAGS,
    )
    async def get(self, component: str, name: str) -> None:
        """A page of runs and ``next`` (None on the last page)."""
        limit = self.int_arg("limit", 50)
        before = self.int_arg("before")
        assert limit is not None
        if not 1 <= limit <= 1000:
            raise ValidationError({"limit": [f"expected 1 to 1000, got {limit}"]})
        if before is not None and not 0 < before <= MAX_ID:
            raise ValidationError({"before": [f"expected an id from 1 to {MAX_ID}"]})
        await self.run(definition_of, self.engine, component, name)
        rows = await self.run(runs, self.engine, component, name, before=before, limit=limit + 1)
        page = rows[:limit]
        self.reply({"items": page, "next": page[-1]["id"] if len(rows) > limit else None})


routes = [
    (rf"/appbook/api/dataflows/{COMPONENT}/{DATAFLOW}/run", RunHandler),
    (rf"/appbook/api/dataflows/{COMPONENT}/{DATAFLOW}/runs", RunsHandler),
]
