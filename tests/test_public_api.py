"""The public names of ``appbook`` are chosen on purpose."""

from __future__ import annotations

import subprocess
import sys

import appbook


def test_all_is_exactly_the_public_api() -> None:
    import types

    # Subpackages become attributes once imported anywhere; they are not the API.
    public = {
        name
        for name in dir(appbook)
        if not name.startswith("_") and not isinstance(getattr(appbook, name), types.ModuleType)
    } - {"annotations"}
    assert set(appbook.__all__) - {"__version__"} == public
    for name in appbook.__all__:
        assert getattr(appbook, name) is not None


def test_errors_share_one_base() -> None:
    for name in (
        "ValidationError",
        "NotFound",
        "Conflict",
        "Forbidden",
        "QueryError",
        "DefinitionError",
    ):
        assert issubclass(getattr(appbook, name), appbook.AppbookError)


def test_import_does_not_load_nbformat() -> None:
    code = "import sys, appbook; appbook.connect; print('nbformat' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_dataflow_names_are_public_and_lazy() -> None:
    code = (
        "import sys, appbook; lazy = 'appbook.server.dataflows.runner' not in sys.modules; "
        "from appbook import DataflowResult, DataflowFailed; "
        "from appbook.server.dataflows import DataflowResult as R; "
        "print(lazy, DataflowResult is R, issubclass(DataflowFailed, appbook.AppbookError))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["True", "True", "True"]
