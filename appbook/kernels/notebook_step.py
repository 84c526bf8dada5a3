"""The ``notebook`` step kind: a published notebook, run by papermill on a warm kernel.

```yaml
- name: scan
  notebook: notebooks/scan.ipynb        # published with the component
  parameters: {days: "inputs.days", customer: "record.customer"}
  timeout: 10m
```

What one attempt does:

1. Reads the notebook as published with the component (never a file edited since); one
   that was not published is a clear error saying how to publish it.
2. Evaluates each parameter's expression (a string; any other YAML value is taken as is)
   over the run's ``record``, ``inputs`` and ``steps``, and checks it against the type
   papermill infers for that parameter from the ``parameters`` cell (its annotation, else
   the type of its literal default): a wrong type, or a parameter the cell does not declare,
   fails the attempt naming the parameter, the expected and the given type.
3. Runs it with papermill's ``appbook`` engine (:mod:`.papermill_engine`) on a kernel of
   the process's :func:`~appbook.kernels.pool.default_pool`, bound to the run first (the
   run context of :mod:`.workflow`: ``context()`` and ``output()``, ``appbook.connect()``
   acting as the run's user), the whole notebook bounded by the step's ``timeout``.
4. Stores the executed notebook in the file store (``runs/{run id}/{step}-{attempt}.ipynb``,
   as the run's user), also when it failed, and sets ``call.notebook_file``.
5. On success, the step's outputs are the notebook's ``output(name, value)`` calls. On
   failure, ``call.traceback`` gets the clean traceback (no colour codes) and
   :class:`StepFailed` names the cell (its index in the published notebook, and its
   execution count), the exception and its value, or (:class:`StepTimedOut`) "timed out
   after N s". A cancel of the run while the notebook executes stops it at the running cell
   (``call.cancelled``, set by the heartbeat) and kills that kernel.
"""

from __future__ import annotations

import ast
import logging
import re
import tempfile
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..server.errors import AppbookError, NotFound
from ..server.expressions import evaluate
from ..server.workflows.steps import StepFailed, StepTimedOut
from .workflow import MIME, begin_code

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from ..server.workflows.steps import StepCall
    from .papermill_engine import Executed

log = logging.getLogger(__name__)

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
MARKERS = ("injected-parameters", "papermill-error-cell-tag")  # cells papermill adds
NOTEBOOK_TYPE = "application/x-ipynb+json"
# Types papermill's inspection can name, and the values each accepts.
ACCEPTS: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "list": (list,),
    "dict": (dict,),
}
ALIASES = {"list": "list", "dict": "dict", "tuple": "list", "string": "str", "integer": "int"}


def run(call: StepCall) -> dict[str, Any]:
    """Run the step's notebook (see the module docstring); ``{"outputs": ...}``."""
    from .papermill_engine import execute
    from .pool import default_pool

    path = call.step.notebook
    assert path is not None
    nb = published_notebook(call, path)
    parameters = checked_parameters(call, nb, path)
    pool = default_pool()  # started by the first notebook step this process runs
    context = run_context(call)
    begin = begin_code(context, call.app.config.environment())
    with tempfile.TemporaryDirectory(prefix="appbook-step-") as folder:
        try:
            executed = execute(
                nb,
                parameters=parameters,
                begin=begin,
                timeout=call.timeout,
                pool=pool,
                metadata={"run": context},
                label=f"{call.run['component']}/{path}",
                workdir=Path(folder),
                stop=call.cancelled,  # set by the heartbeat when the run is cancelled
            )
        except Exception as exc:
            raise StepFailed(f"{path} could not run: {exc}") from exc
    stored = _store(call, executed)
    if executed.error is not None:
        call.traceback = clean_traceback(executed.error.traceback)
        if executed.cancelled:
            raise StepFailed(f"{path} was stopped: its run was cancelled")
        failed = StepTimedOut if executed.timed_out is not None else StepFailed
        raise failed(failure_message(path, executed))
    if stored is not None:
        raise StepFailed(f"the executed notebook could not be stored: {stored}")
    return {"outputs": outputs_of(executed.document)}


# -- the notebook -------------------------------------------------------------------------
def published_notebook(call: StepCall, path: str) -> NotebookNode:
    """The notebook ``path`` as published with the run's component, with a Python
    kernelspec (papermill reads its language there); StepFailed if it was not published, is
    not a notebook, or is not a Python notebook."""
    import nbformat

    try:
        data = call.app.source(call.run["component"], path)
    except NotFound as exc:
        raise StepFailed(exc.message) from None
    try:
        nb: NotebookNode = nbformat.reads(data.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise StepFailed(f"{path} is not a notebook nbformat can read: {exc}") from None
    metadata = nb.metadata
    language = (
        metadata.get("kernelspec", {}).get("language")
        or metadata.get("language_info", {}).get("name")
        or "python"
    )
    if str(language).lower() != "python":
        raise StepFailed(f"{path} is a {language} notebook; workflow notebooks run on Python")
    # The pool decides which kernel runs it; papermill wants a name and a language anyway.
    spec = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
    spec.update(metadata.get("kernelspec") or {})
    metadata["kernelspec"] = {**spec, "language": "python"}
    return nb


def checked_parameters(call: StepCall, nb: NotebookNode, path: str) -> dict[str, Any]:
    """The step's parameters, evaluated over the run's context and checked against the
    notebook's ``parameters`` cell."""
    values = {
        name: jsonable(_value(call, name, given)) for name, given in call.step.parameters.items()
    }
    if not values:
        return values
    declared = declared_parameters(nb)
    if declared is None:  # no parameters cell: papermill injects them at the top
        return values
    for name, value in values.items():
        if name not in declared:
            known = ", ".join(declared) or "nothing"
            raise StepFailed(
                f"{path} has no parameter {name!r} (its parameters cell declares {known})"
            )
        expected, default = declared[name]
        if expected is not None and not fits(value, expected, default):
            given = call.step.parameters[name]
            source = f" from {given!r}" if isinstance(given, str) else ""
            raise StepFailed(
                f"parameter {name!r} of {path} expects {expected} (its default is {default}), "
                f"got {_type_name(value)} {value!r}{source}"
            )
    return values


def _value(call: StepCall, name: str, given: Any) -> Any:
    """A parameter's value: its expression evaluated, or a non-string YAML value as is."""
    from jinja2 import Undefined

    if not isinstance(given, str):
        return given
    where = f"parameter {name}"
    value = evaluate(given, call.context, where=where)
    if isinstance(value, Undefined):  # ``inputs.missing`` evaluates to an undefined value
        try:
            str(value)
        except Exception as exc:
            raise StepFailed(f"{where}: {given!r}: {getattr(exc, 'message', exc)}") from None
    return value


def declared_parameters(nb: NotebookNode) -> dict[str, tuple[str | None, str]] | None:
    """``name -> (expected type or None if unknown, default as written)`` from the
    notebook's ``parameters`` cell, as papermill infers them; None without such a cell."""
    from papermill import inspect_notebook

    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        return None
    found = inspect_notebook(nb)
    return {
        name: (_expected(p["inferred_type_name"], p["default"]), p["default"])
        for name, p in found.items()
    }


def _expected(annotation: str, default: str) -> str | None:
    if annotation and annotation != "None":
        key = annotation.split("[")[0].strip().lower()
        base = ALIASES.get(key, key)
        return base if base in ACCEPTS else None  # Optional[...], datetime, …: not checked
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None  # not a literal (a call, a name): not checked
    if value is None:
        return None
    kind = ALIASES.get(type(value).__name__, type(value).__name__)
    return kind if kind in ACCEPTS else None


def fits(value: Any, expected: str, default: str) -> bool:
    """Whether ``value`` may be given to a parameter of type ``expected`` whose default is
    written ``default`` (None only where the default is None)."""
    if value is None:
        return default.strip() == "None"
    if isinstance(value, bool) and expected != "bool":
        return False  # True is an int to Python, not to whoever wrote ``days = 30``
    return isinstance(value, ACCEPTS[expected])


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


# -- the run context ----------------------------------------------------------------------
def run_context(call: StepCall) -> dict[str, Any]:
    """What ``context()`` returns in the notebook, JSON-safe."""
    run, context = call.run, call.context
    data = {
        "run_id": run["id"],
        "component": run["component"],
        "workflow": run["workflow"],
        "step": call.step.name,
        "notebook": call.step.notebook,
        "attempt": call.attempt,
        "visit": call.visit,
        "idempotency_key": call.idempotency_key,
        "record_id": run.get("record_id"),
        "record": context.get("record") or {},
        "inputs": context.get("inputs") or {},
        "steps": context.get("steps") or {},
        "actor": call.app.actor,
        "trigger": run.get("trigger"),
    }
    result: dict[str, Any] = jsonable(data)
    return result


def jsonable(value: Any) -> Any:
    """``value`` with dates and times as ISO strings, decimals as floats, sets and tuples as
    lists, and anything else JSON does not know as its ``str``."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


# -- what it leaves -----------------------------------------------------------------------
def _store(call: StepCall, executed: Executed) -> str | None:
    """Keep the executed notebook; None, or why it could not be kept."""
    name = f"{call.step.name}-{call.attempt}.ipynb"
    try:
        info = call.app.files.put(
            executed.notebook,
            name=name,
            folder=f"runs/{call.run['id']}",
            media_type=NOTEBOOK_TYPE,
        )
    except AppbookError as exc:
        log.error("run %s: the executed notebook %s was not stored: %s", call.run["id"], name, exc)
        return exc.message
    call.notebook_file = info.id
    return None


def outputs_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """The values the notebook reported with ``output(name, value)`` (the last of a name)."""
    found: dict[str, Any] = {}
    for cell in document.get("cells", []):
        for out in cell.get("outputs") or []:
            bundle = (out.get("data") or {}).get(MIME)
            if isinstance(bundle, dict) and isinstance(bundle.get("name"), str):
                found[bundle["name"]] = bundle.get("value")
    return found


def clean_traceback(lines: Iterable[str]) -> str:
    """A kernel's traceback lines as plain text (IPython colours them with ANSI codes)."""
    return ANSI.sub("", "\n".join(lines))


def failure_message(path: str, executed: Executed) -> str:
    """Which cell failed and how: ``scan.ipynb failed at cell index 3 (In [3]): KeyError:
    'x'``, or ``scan.ipynb timed out after 60 s at cell index 2 (In [2])``."""
    error = executed.error
    where = failed_cell(executed.document)
    if where is None:
        where = f"cell index {error.cell_index}"
    if error.exec_count:
        where += f" (In [{error.exec_count}])"
    if executed.timed_out is not None:
        return f"{path} timed out after {executed.timed_out:g} s at {where}"
    return f"{path} failed at {where}: {error.ename}: {error.evalue}"


def failed_cell(document: Mapping[str, Any]) -> str | None:
    """Where the failed cell is in the *published* notebook (papermill's own index counts
    the cells it added)."""
    index = 0
    for cell in document.get("cells", []):
        tags = (cell.get("metadata") or {}).get("tags") or []
        status = ((cell.get("metadata") or {}).get("papermill") or {}).get("status")
        if "injected-parameters" in tags and status == "failed":
            return "the injected parameters cell"
        if any(tag in tags for tag in MARKERS):
            continue
        if status == "failed":
            return f"cell index {index}"
        index += 1
    return None
