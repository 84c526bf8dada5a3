"""Workflow runs: persistent state machines over the steps of a component's workflow."""

from .runs import TERMINAL, Runs

__all__ = ["TERMINAL", "Runs"]
