"""Celery's Redis visibility timeout against the longest step of every published workflow.

With late acknowledgement a task's message stays unacknowledged while its run's steps run;
Redis hands a message that stayed unacknowledged longer than ``visibility_timeout`` to
another worker. The database lease makes that second delivery harmless (it finds the run
held and returns), but a step longer than the timeout then has its message redelivered
over and over for as long as it runs. So workers and dispatchers refuse to start unless the
timeout exceeds every step's ``timeout`` (and the default that applies to steps without
one), naming the step that does not fit and the setting to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..definitions.workflows import duration_seconds
from ..errors import ExecutorMisconfigured

if TYPE_CHECKING:
    from ..engine import Appbook

__all__ = ["ExecutorMisconfigured", "LongestStep", "check_visibility", "longest_step"]


@dataclass(frozen=True)
class LongestStep:
    """The step that may hold a worker longest, and for how long."""

    component: str
    workflow: str
    step: str
    seconds: float
    defaulted: bool  # the step has no timeout of its own: the default applies

    def describe(self) -> str:
        """How the error message names it."""
        where = f"step {self.step!r} of workflow {self.workflow!r} of component {self.component!r}"
        if self.defaulted:
            return (
                f"{where} has no timeout, so the default step timeout ({self.seconds:g} s) applies"
            )
        return f"{where} has timeout {self.seconds:g} s"


def longest_step(app: Appbook, default_timeout: float) -> LongestStep | None:
    """The published step with the longest timeout (``default_timeout`` for steps without
    one); None when no workflow is published."""
    found: LongestStep | None = None
    for name, component in sorted(app.registry.all().items()):
        for workflow_name, workflow in sorted((component.definition.workflows or {}).items()):
            for _, step in workflow.steps():
                own = duration_seconds(step.timeout) if step.timeout else None
                seconds = default_timeout if own is None else own
                if found is None or seconds > found.seconds:
                    found = LongestStep(name, workflow_name, step.name, seconds, own is None)
    return found


def check_visibility(app: Appbook, visibility_timeout: float, default_timeout: float) -> None:
    """Raise :class:`ExecutorMisconfigured` unless ``visibility_timeout`` exceeds the
    longest step timeout of every published workflow (and ``default_timeout``)."""
    longest = longest_step(app, default_timeout)
    seconds = default_timeout if longest is None else longest.seconds
    if visibility_timeout > seconds:
        return
    what = (
        longest.describe()
        if longest is not None
        else f"the default step timeout is {default_timeout:g} s"
    )
    raise ExecutorMisconfigured(
        f"Celery's visibility timeout ({visibility_timeout:g} s) must exceed the longest step "
        f"timeout: {what}. Redis would hand the task to another worker while the step runs, "
        f"again and again. Set APPBOOK_CELERY_VISIBILITY_TIMEOUT (CelerySettings."
        f"visibility_timeout) above {seconds:g}, or give the step a shorter timeout "
        f"(steps without one: APPBOOK_STEP_TIMEOUT, CelerySettings.default_step_timeout)."
    )
