"""The run context of a workflow notebook: which run and step it serves, and its outputs.

In a notebook that a workflow runs as a step::

    from appbook.kernels.workflow import context, output

    ctx = context()
    ctx["record"]["amount"], ctx["inputs"], ctx["steps"]["scan"]["total"], ctx["attempt"]
    output("total", 42)          # a JSON value: the step's outputs["total"]

``context()`` is a fresh dict each call with ``run_id``, ``component``, ``workflow``,
``step``, ``notebook``, ``attempt``, ``visit``, ``idempotency_key`` (``run:step:visit``, the
same for every attempt at one visit of the step: key a side effect by it and it happens
once however often the attempt is retried), ``record_id``, ``record``, ``inputs``, ``steps``
(the outputs of the steps before), ``actor`` (the user who started the run) and ``trigger``.

``output(name, value)`` displays the value under the MIME type :data:`MIME` (as scrapbook's
``glue`` does), so it is kept in the executed notebook; the step handler reads every such
output back (a later value of the same name wins) and returns them as the step's outputs.

How the context gets into a kernel that was started before the run existed: before the
first cell, the step handler runs ``_begin(payload)`` in the kernel as a *silent* execute
request (no cell, no output, no history entry, the execution counter untouched), so the
notebook's cells and their numbers are exactly those its maker wrote (plus papermill's
injected-parameters cell). The payload also carries the ``APPBOOK_*`` variables of the
run's data layer, set in ``os.environ``, so ``appbook.connect()`` reaches the run's
database whatever the pool kernel was started with, and it acts as the run's user (records
it writes have ``created_by``/``updated_by`` set to them). The executed notebook keeps the
context (without the variables) in its metadata, under ``appbook.run``.

Outside a workflow run (a maker trying the notebook in JupyterLab) ``context()`` returns a
detached context: ``run_id`` None, empty ``record``, ``inputs`` and ``steps``; ``output``
still displays its value.
"""

from __future__ import annotations

import json
import os
from typing import Any

MIME = "application/vnd.appbook.output+json"
ENGINE_VARIABLES = (
    "APPBOOK_HOME",
    "APPBOOK_DATABASE_URL",
    "APPBOOK_FILES_URL",
    "APPBOOK_KEY_FILE",
    "APPBOOK_REDIS_URL",
)

_context: str | None = None  # the JSON of this run's context, once _begin has run
_actor: str | None = None

DETACHED: dict[str, Any] = {
    "run_id": None,
    "component": None,
    "workflow": None,
    "step": None,
    "notebook": None,
    "attempt": 1,
    "visit": 1,
    "idempotency_key": None,
    "record_id": None,
    "record": {},
    "inputs": {},
    "steps": {},
    "actor": None,
    "trigger": None,
}


def context() -> dict[str, Any]:
    """The context of the run this notebook serves (a new copy each call), or a detached
    one outside a run (see the module docstring)."""
    copy: dict[str, Any] = json.loads(json.dumps(DETACHED) if _context is None else _context)
    return copy


def in_run() -> bool:
    """Whether this kernel serves a workflow run."""
    return _context is not None


def current_actor() -> str | None:
    """The user the run acts as, in a kernel that serves one (``appbook.connect()`` acts as
    them); else None."""
    return _actor


def output(name: str, value: Any) -> None:
    """Report ``value`` as the step's output ``name``. ``value`` must be JSON (str, int,
    float, bool, None, and lists and dicts of them; numpy scalars and arrays become those);
    TypeError says what is not."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"an output name is a non-empty string, not {name!r}")
    try:
        text = json.dumps(value, allow_nan=False, default=_numpy)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"output {name!r} must be a JSON value (str, int, float, bool, None, lists and "
            f"dicts of them), not {type(value).__name__}: {exc}"
        ) from None
    from IPython.display import display

    plain = f"{name} = {text if len(text) <= 200 else text[:197] + '...'}"
    bundle = {MIME: {"name": name, "value": json.loads(text)}, "text/plain": plain}
    display(bundle, raw=True)  # type: ignore[no-untyped-call]


def _numpy(value: Any) -> Any:
    """numpy scalars and arrays (``df["x"].sum()``, ``series.values``) as plain values."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _begin(payload: str) -> None:
    """Bind this kernel to a run: ``payload`` is ``{"context": ..., "environment": ...}``
    as JSON (the step handler sends it before the first cell)."""
    global _context, _actor
    data = json.loads(payload)
    environment: dict[str, str] = data.get("environment") or {}
    for name in ENGINE_VARIABLES:
        if name in environment:
            os.environ[name] = environment[name]
        else:
            os.environ.pop(name, None)
    _context = json.dumps(data["context"])
    _actor = data["context"].get("actor")


def begin_code(context: dict[str, Any], environment: dict[str, str]) -> str:
    """The code that runs :func:`_begin` with ``context`` and ``environment`` in a kernel
    (``context`` already JSON-safe)."""
    payload = json.dumps({"context": context, "environment": environment})
    return f"import appbook.kernels.workflow as _w\n_w._begin({payload!r})\ndel _w"
