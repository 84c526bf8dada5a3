"""Pydantic models of the runs API (workflows, runs, step runs, decisions)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out"]


class StartRun(BaseModel):
    """What a run starts with."""

    model_config = ConfigDict(extra="forbid")

    record_id: int | None = Field(None, description="The record the run is about.")
    inputs: dict[str, Any] | None = Field(None, description="The run's inputs (name -> value).")


class Decision(BaseModel):
    """An approval's decision: a comment, kept with it."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field("", max_length=10000)


class WorkflowStep(BaseModel):
    """A step of a workflow, in order."""

    name: str
    kind: str
    stage: str


class WorkflowSummary(BaseModel):
    """A published workflow."""

    component: str
    name: str
    title: str | None = None
    enabled: bool
    trigger: dict[str, Any] | None = Field(None, description="cron / on / webhook, or none.")
    inputs: dict[str, Any] = Field(default_factory=dict)
    max_concurrent: int | None = None
    steps: list[WorkflowStep]


class WorkflowList(BaseModel):
    """Every component's workflows."""

    items: list[WorkflowSummary]


class StepRunInfo(BaseModel):
    """One attempt at one step."""

    id: int
    step: str
    attempt: int
    status: str = Field(description="running, waiting (an approval), succeeded or failed.")
    outputs: dict[str, Any]
    error: str
    traceback: str
    notebook_file: str | None = Field(
        None, description="The executed notebook: GET …/steps/{id}/notebook(.html)."
    )
    started_at: str
    finished_at: str | None = None
    duration: float | None = Field(None, description="Seconds (until now while it runs).")


class RunInfo(BaseModel):
    """A workflow run."""

    id: int
    component: str
    workflow: str
    record_id: int | None = None
    status: RunStatus
    step: str | None = Field(None, description="The step it runs next (or waits in).")
    inputs: dict[str, Any]
    outputs: dict[str, Any] = Field(description="Step name -> its outputs.")
    error: str
    trigger: str = Field(description="manual, cron, event or webhook.")
    created_by: str
    created_at: str
    updated_at: str
    finished_at: str | None = None
    wake_at: str | None = Field(None, description="When a waiting run is due again.")
    duration: float | None = Field(None, description="Seconds since it started, until it ended.")
    waiting_for: dict[str, Any] | None = Field(
        None, description="The approval it waits for: step, user or role, deadline."
    )


class RunDetail(RunInfo):
    """A run with its step runs and what the signed-in user can do to it."""

    steps: list[StepRunInfo]
    actions: list[Literal["approve", "reject", "retry", "cancel"]]


class RunPage(BaseModel):
    """Runs, newest first."""

    items: list[RunInfo]
    next: int | None = Field(None, description="Pass as before= for the next page.")
