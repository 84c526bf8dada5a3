"""Notebooks and scripts travel with the publication: stored by content, read back by
component and path, part of the content hash, restored by rollback; bad ones refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appbook.server.engine import Appbook
from appbook.server.errors import DefinitionError, NotFound

COMPONENT = """\
name: tasks
fields:
  title: {type: string}
workflows:
  nightly:
    stages:
      - name: only
        steps:
          - {name: scan, notebook: nb/scan.ipynb}
"""


def notebook(source: str) -> str:
    cell = {
        "cell_type": "code",
        "source": source,
        "metadata": {},
        "outputs": [],
        "execution_count": None,
    }
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def write(folder: Path, cell: str, script: str | None = None) -> Path:
    (folder / "nb").mkdir(parents=True, exist_ok=True)
    (folder / "tasks.component.yaml").write_text(COMPONENT)
    (folder / "nb" / "scan.ipynb").write_text(notebook(cell))
    if script is not None:
        (folder / "tasks.py").write_text(script)
    return folder


def test_notebooks_and_scripts_are_published_and_versioned(app: Appbook, tmp_path: Path) -> None:
    first = app.publish(write(tmp_path, "x = 1", script="def on_load(context): pass\n"))
    assert json.loads(app.source("tasks", "nb/scan.ipynb"))["cells"][0]["source"] == "x = 1"
    assert app.source("tasks", "tasks.py").startswith(b"def on_load")
    assert not app.publish(tmp_path).changed  # same notebook: nothing new
    (tmp_path / "nb" / "scan.ipynb").write_text(notebook("x = 2"))  # edited after publishing
    assert json.loads(app.source("tasks", "nb/scan.ipynb"))["cells"][0]["source"] == "x = 1"
    second = app.publish(tmp_path)
    assert second.changed and second.number == first.number + 1
    assert json.loads(app.source("tasks", "nb/scan.ipynb"))["cells"][0]["source"] == "x = 2"
    app.rollback(first.number)
    assert json.loads(app.source("tasks", "nb/scan.ipynb"))["cells"][0]["source"] == "x = 1"


def test_a_source_that_was_not_published_is_named(app: Appbook, tmp_path: Path) -> None:
    app.publish(write(tmp_path, "x = 1"))
    with pytest.raises(NotFound, match=r"'other\.ipynb' was not published with component 'tasks'"):
        app.source("tasks", "other.ipynb")


def test_a_file_that_is_not_a_notebook_is_refused_with_its_line(
    app: Appbook, tmp_path: Path
) -> None:
    write(tmp_path, "x = 1")
    (tmp_path / "nb" / "scan.ipynb").write_text("print('hello')")
    with pytest.raises(DefinitionError) as info:
        app.publish(tmp_path)
    (problem,) = info.value.problems
    assert str(problem) == (
        "tasks.component.yaml:9 workflows.nightly.stages[0].steps[0].notebook: "
        "'nb/scan.ipynb' is not a notebook (no JSON with cells)"
    )
    assert app.publications() == []
