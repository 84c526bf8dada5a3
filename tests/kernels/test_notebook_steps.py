"""Notebook steps of workflows, on SQLite and PostgreSQL: run by papermill on pooled kernels,
with the run context and outputs, records written as the run's user, executed notebooks in
the file store, and failures, timeouts, wrong parameters and missing notebooks named."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook

pytestmark = pytest.mark.slow

COMPONENT = """\
name: orders
fields:
  title: {type: string}
  total: {type: number}
  key: {type: string, unique: true}
  note: {type: string}
workflows:
  process:
    stages:
      - name: work
        steps:
          - {name: count, notebook: nb/count.ipynb, parameters: {factor: "inputs.factor", label: "record.title"}}
          - {name: report, notebook: nb/report.ipynb}
  failing:
    stages:
      - name: s
        steps:
          - {name: crash, notebook: nb/crash.ipynb}
  slow:
    stages:
      - name: s
        steps:
          - {name: sleep, notebook: nb/sleep.ipynb, timeout: 1s}
  long:
    stages:
      - name: s
        steps:
          - {name: sleep, notebook: nb/sleep.ipynb}
  typed:
    stages:
      - name: s
        steps:
          - {name: count, notebook: nb/count.ipynb, parameters: {factor: "inputs.factor"}}
  unknown:
    stages:
      - name: s
        steps:
          - {name: count, notebook: nb/count.ipynb, parameters: {factr: "inputs.factor"}}
  once:
    stages:
      - name: s
        steps:
          - {name: charge, notebook: nb/charge.ipynb, retries: {count: 1, backoff: 0s}}
  twice:
    stages:
      - name: s
        steps:
          - {name: peek, notebook: nb/peek.ipynb}
          - {name: peek_again, notebook: nb/peek.ipynb}
  dying:
    stages:
      - name: s
        steps:
          - {name: die, notebook: nb/die.ipynb}
  other_language:
    stages:
      - name: s
        steps:
          - {name: stats, notebook: nb/stats.ipynb}
  not_json:
    stages:
      - name: s
        steps:
          - {name: frame, notebook: nb/frame.ipynb}
"""

PARAMETERS = 'factor = 2  # how much\nlabel = "none"'
COUNT = """\
import appbook
from appbook.kernels.workflow import context, output
ctx = context()
app = appbook.connect()
made = app["orders"].create({"title": f"{label} x{factor}", "total": 10 * factor})
output("total", made["total"])
output("made", made["id"])
output("context", {k: ctx[k] for k in ("run_id", "component", "workflow", "step", "attempt", "idempotency_key", "record_id", "actor", "trigger")})
output("record_title", ctx["record"]["title"])
import numpy as np
output("squares", np.arange(3) ** 2)  # numpy values become plain JSON
output("count", np.int64(7))
"""
REPORT = """\
import appbook
from appbook.kernels.workflow import context, output
ctx = context()
app = appbook.connect()
app["orders"].update(ctx["record_id"], {"note": f"counted {ctx['steps']['count']['total']:g}"})
output("seen", ctx["steps"]["count"]["total"])
"""
CHARGE = """\
import appbook
from appbook.kernels.workflow import context, output
ctx = context()
app = appbook.connect()
try:
    app["orders"].create({"title": "charge", "key": ctx["idempotency_key"]})
except appbook.Conflict:
    pass  # this visit already charged: a retry must not charge twice
if ctx["attempt"] == 1:
    raise ConnectionError("the payment service hung up")
output("attempt", ctx["attempt"])
"""
PEEK = """\
import os
from appbook.kernels.workflow import output
output("leftover", "secret" in globals())
output("pid", os.getpid())
output("files", sorted(os.listdir(".")))
secret = 42
open("scratch.txt", "w").write("mine")
"""


def notebook(*cells: str, parameters: str | None = None, markdown: bool = False) -> str:
    """A notebook of code cells (after a markdown cell and a parameters cell if asked)."""
    items = [new_markdown_cell("# A step")] if markdown else []
    if parameters is not None:
        cell = new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        items.append(cell)
    items.extend(new_code_cell(source) for source in cells)
    return nbformat.writes(new_notebook(cells=items))


@pytest.fixture
def orders(app: Appbook, tmp_path: Path) -> Appbook:
    folder = tmp_path / "component"
    (folder / "nb").mkdir(parents=True)
    (folder / "orders.component.yaml").write_text(COMPONENT)
    notebooks = {
        "count": notebook(COUNT, parameters=PARAMETERS, markdown=True),
        "report": notebook(REPORT),
        "crash": notebook("x = 1", "raise ValueError(f'bad total {x}')", "never = True"),
        "sleep": notebook("import time\ntime.sleep(120)", "after = True"),
        "charge": notebook(CHARGE),
        "peek": notebook(PEEK),
        "die": notebook("import os\nos._exit(3)"),
        "frame": notebook(
            "from appbook.kernels.workflow import output\noutput('when', __import__('datetime').date.today())"
        ),
    }
    r_notebook = new_notebook(cells=[new_code_cell("summary(cars)")])
    r_notebook.metadata["kernelspec"] = {"name": "ir", "language": "R", "display_name": "R"}
    notebooks["stats"] = nbformat.writes(r_notebook)
    for name, text in notebooks.items():
        (folder / "nb" / f"{name}.ipynb").write_text(text)
    app.publish(folder)
    return app


def run(app: Appbook, workflow: str, *, user: str = "ada", **kwargs: Any) -> dict[str, Any]:
    started = app.as_user(user).runs.start("orders", workflow, **kwargs)
    return app.runs.advance(int(started["id"]))


def executed(app: Appbook, step_run: dict[str, Any]) -> Any:
    assert step_run["notebook_file"], step_run
    return nbformat.reads(app.files.get(step_run["notebook_file"]).decode(), as_version=4)


def test_outputs_context_records_and_the_executed_notebook(orders: Appbook) -> None:
    record = orders["orders"].create({"title": "Paper"})
    done = run(orders, "process", record_id=record["id"], inputs={"factor": 3})
    assert done["status"] == "succeeded", done["error"]
    count = done["outputs"]["count"]
    assert count["total"] == 30 and count["record_title"] == "Paper"
    assert count["squares"] == [0, 1, 4] and count["count"] == 7
    assert count["context"] == {
        "run_id": done["id"],
        "component": "orders",
        "workflow": "process",
        "step": "count",
        "attempt": 1,
        "idempotency_key": f"{done['id']}:count:1",
        "record_id": record["id"],
        "actor": "ada",
        "trigger": "manual",
    }
    assert done["outputs"]["report"] == {"seen": 30}  # the earlier step's outputs reach it
    # Records the notebooks wrote are the run's user's.
    made = orders["orders"].get(count["made"])
    assert made["title"] == "Paper x3" and made["created_by"] == "ada"
    updated = orders["orders"].get(record["id"])
    assert updated["note"] == "counted 30" and updated["updated_by"] == "ada"
    # Each executed notebook is in the file store, the parameters injected, outputs kept.
    steps = orders.runs.steps(done["id"])
    assert [(s["step"], s["status"], s["traceback"]) for s in steps] == [
        ("count", "succeeded", ""),
        ("report", "succeeded", ""),
    ]
    nb = executed(orders, steps[0])
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "factor = 3" in injected[0].source
    assert 'label = "Paper"' in injected[0].source or "label = 'Paper'" in injected[0].source
    assert nb.metadata.appbook.run.run_id == done["id"]
    assert nb.metadata.papermill.input_path == "orders/nb/count.ipynb"
    assert all(c.metadata.papermill.status == "completed" for c in nb.cells)
    info = orders.files.stat(steps[0]["notebook_file"])
    assert info.name == "count-1.ipynb" and info.folder == f"runs/{done['id']}"
    assert info.created_by == "ada" and info.media_type == "application/x-ipynb+json"


def test_a_failing_cell_is_named_and_marked_in_the_stored_notebook(orders: Appbook) -> None:
    failed = run(orders, "failing")
    assert failed["status"] == "failed"
    assert failed["error"] == (
        "step crash: nb/crash.ipynb failed at cell index 1 (In [2]): ValueError: bad total 1"
    )
    (step,) = orders.runs.steps(failed["id"])
    assert step["status"] == "failed" and step["error"] == failed["error"]
    assert "ValueError: bad total 1" in step["traceback"]
    assert "raise ValueError" in step["traceback"] and "\x1b" not in step["traceback"]
    nb = executed(orders, step)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert "papermill-error-cell-tag" in tags[0]  # the banner at the top links to the cell
    failing = next(c for c in nb.cells if "raise ValueError" in c.get("source", ""))
    assert failing.metadata.papermill.exception is True
    assert failing.outputs[-1].ename == "ValueError"
    after = next(c for c in nb.cells if c.get("source") == "never = True")
    assert after.execution_count is None and after.outputs == []


def test_a_notebook_past_its_timeout_is_stopped_and_the_run_times_out(orders: Appbook) -> None:
    began = time.monotonic()
    failed = run(orders, "slow")
    assert time.monotonic() - began < 30
    assert failed["status"] == "timed_out"
    assert failed["error"] == (
        "step sleep: nb/sleep.ipynb timed out after 1 s at cell index 0 (In [1])"
    )
    (step,) = orders.runs.steps(failed["id"])
    assert "TimeoutError: timed out after 1 s" in step["traceback"]
    nb = executed(orders, step)
    sleeping = next(c for c in nb.cells if "time.sleep" in c.get("source", ""))
    assert sleeping.metadata.papermill.exception is True
    assert sleeping.outputs[-1].ename == "TimeoutError"
    assert nb.metadata.appbook.timed_out == 1


def test_cancelling_a_run_stops_its_running_notebook(orders: Appbook) -> None:
    started = orders.as_user("ada").runs.start("orders", "long")
    worker = threading.Thread(target=orders.runs.advance, args=(int(started["id"]),))
    worker.start()
    deadline = time.monotonic() + 60
    while not [s for s in orders.runs.steps(started["id"]) if s["status"] == "running"]:
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    orders.runs.cancel(int(started["id"]))
    worker.join(timeout=60)  # the notebook sleeps 120 s: only the cancel ends it sooner
    assert not worker.is_alive(), "the cancel did not stop the notebook"
    ended = orders.runs.get(int(started["id"]))
    assert ended["status"] == "cancelled"
    (step,) = orders.runs.steps(started["id"])
    assert step["status"] == "cancelled"
    assert step["error"] == "step sleep: nb/sleep.ipynb was stopped: its run was cancelled"
    nb = executed(orders, step)
    sleeping = next(c for c in nb.cells if "time.sleep" in c.get("source", ""))
    assert sleeping.outputs[-1].ename == "Cancelled"
    after = next(c for c in nb.cells if c.get("source") == "after = True")
    assert after.execution_count is None
    assert nb.metadata.appbook.cancelled is True


def test_a_kernel_that_dies_fails_the_attempt_saying_so(orders: Appbook) -> None:
    failed = run(orders, "dying")
    assert failed["status"] == "failed"
    assert failed["error"].startswith("step die: nb/die.ipynb failed at cell index 0")
    assert "DeadKernelError: the kernel died while this cell ran" in failed["error"]
    (step,) = orders.runs.steps(failed["id"])
    assert step["notebook_file"]


def test_parameters_of_the_wrong_type_or_unknown_ones_are_refused(orders: Appbook) -> None:
    wrong = run(orders, "typed", inputs={"factor": "three"})
    assert wrong["status"] == "failed"
    assert wrong["error"] == (
        "step count: parameter 'factor' of nb/count.ipynb expects int (its default is 2), "
        "got str 'three' from 'inputs.factor'"
    )
    assert run(orders, "typed", inputs={"factor": True})["error"].endswith(
        "expects int (its default is 2), got bool True from 'inputs.factor'"
    )
    unknown = run(orders, "unknown", inputs={"factor": 2})
    assert unknown["error"] == (
        "step count: nb/count.ipynb has no parameter 'factr' "
        "(its parameters cell declares factor, label)"
    )
    missing = run(orders, "typed", inputs={})
    assert missing["error"].startswith("step count: parameter factor: 'inputs.factor'")
    for failed in (wrong, unknown, missing):  # refused before anything ran
        assert [s["notebook_file"] for s in orders.runs.steps(failed["id"])] == [None]
    assert orders["orders"].count() == 0


def test_a_notebook_that_was_not_published_is_named(app: Appbook) -> None:
    app.publish_texts(
        {
            "orders.component.yaml": "name: orders\nfields:\n  title: {type: string}\n"
            "workflows:\n  w:\n    stages:\n      - name: s\n        steps:\n"
            "          - {name: scan, notebook: work.ipynb}\n"
        }
    )
    failed = app["orders"].run_workflow("w")
    assert failed["status"] == "failed"
    assert failed["error"] == (
        "step scan: 'work.ipynb' was not published with component 'orders': publish the "
        "folder that holds it (appbook publish DIR)"
    )


def test_a_side_effect_keyed_by_the_idempotency_key_happens_once(orders: Appbook) -> None:
    done = run(orders, "once")
    assert done["status"] == "succeeded", done["error"]
    assert done["outputs"]["charge"] == {"attempt": 2}
    steps = orders.runs.steps(done["id"])
    assert [(s["attempt"], s["status"]) for s in steps] == [(1, "failed"), (2, "succeeded")]
    assert "ConnectionError: the payment service hung up" in steps[0]["error"]
    assert all(s["notebook_file"] for s in steps)  # the failed attempt's notebook is kept too
    charges = orders["orders"].query(where={"title": "charge"})
    assert [c["key"] for c in charges] == [f"{done['id']}:charge:1"]


def test_a_second_run_on_the_pool_sees_nothing_of_the_first(orders: Appbook) -> None:
    done = run(orders, "twice")
    assert done["status"] == "succeeded", done["error"]
    first, second = done["outputs"]["peek"], done["outputs"]["peek_again"]
    assert first["leftover"] is False and second["leftover"] is False
    assert first["pid"] != second["pid"]
    assert first["files"] == [] and second["files"] == []  # each kernel has a folder of its own
    again = run(orders, "twice")
    assert again["outputs"]["peek"]["leftover"] is False
    assert again["outputs"]["peek"]["pid"] not in (first["pid"], second["pid"])


def test_the_stored_notebook_is_valid_json_that_nbformat_accepts(orders: Appbook) -> None:
    done = run(orders, "failing")
    (step,) = orders.runs.steps(done["id"])
    data = json.loads(orders.files.get(step["notebook_file"]))
    nbformat.validate(nbformat.from_dict(data))


def test_only_python_notebooks_and_json_outputs(orders: Appbook) -> None:
    other = run(orders, "other_language")
    assert other["error"] == (
        "step stats: nb/stats.ipynb is a R notebook; workflow notebooks run on Python"
    )
    not_json = run(orders, "not_json")
    assert not_json["status"] == "failed"
    assert not_json["error"].startswith(
        "step frame: nb/frame.ipynb failed at cell index 0 (In [1]): TypeError: output 'when' "
        "must be a JSON value (str, int, float, bool, None, lists and dicts of them), not date"
    )


def test_worker_processes_of_the_local_executor_run_notebook_steps(
    orders: Appbook, config: EngineConfig
) -> None:
    from appbook.server.workflows.executor import LocalExecutor

    record = orders["orders"].create({"title": "Ink"})
    started = orders.as_user("ada").runs.start(
        "orders", "process", record_id=record["id"], inputs={"factor": 2}
    )
    executor = LocalExecutor(config, processes=1, lease=10, poll=0.1)
    executor.start()
    try:
        executor.wake()
        deadline = time.monotonic() + 120
        while orders.runs.get(int(started["id"]))["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, "the worker did not finish the run"
            time.sleep(0.1)
    finally:
        executor.stop()
    done = orders.runs.get(int(started["id"]))
    assert done["status"] == "succeeded", done["error"]
    assert done["outputs"]["count"]["total"] == 20
    assert orders["orders"].get(record["id"])["updated_by"] == "ada"
