"""Workflow runs: persistent state machines over the steps of a component's workflow."""

from .runs import INLINE, TERMINAL, Runs
from .steps import StepCall, StepFailed

__all__ = ["INLINE", "TERMINAL", "Runs", "StepCall", "StepFailed"]
