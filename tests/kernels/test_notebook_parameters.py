"""What the notebook step handler reads from notebooks, without a kernel: the types of the
parameters cell, where a failure is in the published notebook, outputs, clean tracebacks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from appbook.kernels.notebook_step import (
    clean_traceback,
    declared_parameters,
    failed_cell,
    fits,
    jsonable,
    outputs_of,
)
from appbook.kernels.workflow import MIME, begin_code


def parameters_notebook(source: str) -> object:
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# x"), cell, new_code_cell("pass")])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    return nb


def test_types_come_from_annotations_else_from_literal_defaults() -> None:
    nb = parameters_notebook(
        'days = 30  # how far back\nrate = 0.5\nname = "x"\nflag = False\nitems = [1, 2]\n'
        "opts = {'a': 1}\nlimit: int = None\nwhen = datetime.now()\nnothing = None\n"
        "names: List[str] = []\nodd: Optional[int] = 3\n"
    )
    declared = declared_parameters(nb)  # type: ignore[arg-type]
    assert declared is not None
    assert {k: v[0] for k, v in declared.items()} == {
        "days": "int",
        "rate": "float",
        "name": "str",
        "flag": "bool",
        "items": "list",
        "opts": "dict",
        "limit": "int",
        "when": None,  # not a literal: not checked
        "nothing": None,
        "names": "list",
        "odd": None,  # Optional[...]: not checked
    }
    assert declared["days"][1] == "30"
    assert declared_parameters(new_notebook(cells=[new_code_cell("x = 1")])) is None


def test_what_fits_a_type() -> None:
    assert fits(3, "int", "30") and not fits(3.5, "int", "30") and not fits(True, "int", "1")
    assert fits(3, "float", "0.5") and fits(0.25, "float", "0.5")
    assert fits(False, "bool", "True") and not fits(0, "bool", "True")
    assert fits("a", "str", '"x"') and not fits(1, "str", '"x"')
    assert fits(None, "int", "None") and not fits(None, "int", "30")


def test_a_failure_is_located_in_the_published_notebook() -> None:
    def cell(tags: list[str], status: str) -> dict[str, object]:
        return {"metadata": {"tags": tags, "papermill": {"status": status}}}

    document = {
        "cells": [
            cell(["papermill-error-cell-tag"], "completed"),  # papermill's banner
            cell(["parameters"], "completed"),
            cell(["injected-parameters"], "completed"),
            cell([], "completed"),
            cell(["papermill-error-cell-tag"], "completed"),  # the anchor before the cell
            cell([], "failed"),
        ]
    }
    assert failed_cell(document) == "cell index 2"
    document["cells"][2] = cell(["injected-parameters"], "failed")
    assert failed_cell(document) == "the injected parameters cell"


def test_outputs_tracebacks_and_json() -> None:
    out = {"output_type": "display_data", "data": {MIME: {"name": "n", "value": 1}}}
    later = {"output_type": "display_data", "data": {MIME: {"name": "n", "value": 2}}}
    other = {"output_type": "stream", "name": "stdout", "text": "hi"}
    document = {"cells": [{"outputs": [out, other]}, {"cells": []}, {"outputs": [later]}]}
    assert outputs_of(document) == {"n": 2}
    assert clean_traceback(["\x1b[0;31mValueError\x1b[0m: bad", "\x1b[1;32mline\x1b[0m"]) == (
        "ValueError: bad\nline"
    )
    moment = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert jsonable({"a": (moment, date(2026, 1, 2), Decimal("1.5"), {1})}) == {
        "a": ["2026-01-02T03:04:00+00:00", "2026-01-02", 1.5, [1]]
    }
    code = begin_code({"actor": "ada"}, {"APPBOOK_HOME": "/h"})
    assert code.startswith("import appbook.kernels.workflow as _w\n_w._begin(")


def test_begin_binds_the_run_and_the_data_layer() -> None:
    import os

    from appbook.kernels import workflow

    saved = dict(os.environ)
    try:
        os.environ["APPBOOK_REDIS_URL"] = "redis://elsewhere"
        assert workflow.context()["run_id"] is None and not workflow.in_run()
        exec(begin_code({"run_id": 7, "actor": "ada"}, {"APPBOOK_HOME": "/h"}), {})
        assert workflow.context() == {"run_id": 7, "actor": "ada"}
        assert workflow.current_actor() == "ada" and workflow.in_run()
        assert os.environ["APPBOOK_HOME"] == "/h" and "APPBOOK_REDIS_URL" not in os.environ
        copy = workflow.context()
        copy["run_id"] = 8
        assert workflow.context()["run_id"] == 7  # every call is a fresh copy
    finally:
        workflow._context = workflow._actor = None
        os.environ.clear()
        os.environ.update(saved)
