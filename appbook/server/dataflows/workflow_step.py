"""The workflow step kind ``dataflow`` (entry point ``appbook.steps: dataflow``).

```yaml
- {name: reprice, dataflow: reprice, parameters: {rate: "inputs.rate"}}
```

Runs the run's component's dataflow on the run's record, with the step's ``parameters``
(expressions over the run's context, as notebook parameters are) as its inputs. The
dataflow's writes are one transaction of their own; the step's outputs are the respond
value, the form actions and the run log id. Dataflows with scripts run here too: workflow
steps already run in an executor's worker, never in the server process.
"""

from __future__ import annotations

import json
from datetime import date, time
from typing import Any

from ..expressions import evaluate
from ..workflows.steps import StepCall
from .runner import run


def run_step(call: StepCall) -> dict[str, Any]:
    """Run the step's dataflow; ``{"outputs": {"value", "actions", "run_id"}}``."""
    inputs = {
        name: evaluate(given, call.context, where=call.where) if isinstance(given, str) else given
        for name, given in call.step.parameters.items()
    }
    result = run(
        call.app,
        call.run["component"],
        call.step.dataflow or "",
        inputs=inputs,
        record=call.run["record_id"],
        via="workflow",
    )
    outputs = {"value": result.value, "actions": result.actions, "run_id": result.run_id}
    return {"outputs": jsonable(outputs)}


def jsonable(value: Any) -> Any:
    """``value`` as JSON keeps it (dates and times as ISO 8601 text): step outputs are
    stored as JSON."""
    return json.loads(json.dumps(value, default=_iso))


def _iso(value: Any) -> str:
    if isinstance(value, date | time):
        return value.isoformat()
    raise TypeError(f"cannot keep {type(value).__name__} in step outputs")
