"""Publish-time checks of a component's script (``<component>.py`` beside its definition).

The script is read the way it will run in an app's kernel, but only parsed here (``ast``),
never executed: a syntax error is reported with the script's own file and line, and every
``call: function`` action of the component's pages must name a plain function defined at
the top of the script, each problem with the YAML file and line of the action.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import Problem
from .loader import Loaded
from .pages import Action, Node, _children

Path_ = list[str | int]


def check_script(item: Loaded) -> list[Problem]:
    """Problems of ``item``'s script and of the ``call`` actions naming its functions (none
    when the definition was not read from a folder: there is no script to read then)."""
    folder, name = item.source.folder, item.definition.name
    calls = list(_calls(item.definition.pages or {}))
    if folder is None:
        return []
    script = folder / f"{name}.py"
    shown = str(PurePosixPath(item.source.file).parent / script.name).removeprefix("./")
    if not script.is_file():
        return [
            item.source.problem(path, f"call {fn!r}: no script {script.name} beside the definition")
            for path, fn in calls
        ]
    try:
        functions = script_functions(script, shown)
    except SyntaxError as exc:
        return [Problem(shown, exc.lineno, "", f"invalid Python: {exc.msg}")]
    problems = []
    for path, fn in calls:
        message = not_callable(functions, fn, shown)
        if message is not None:
            problems.append(item.source.problem(path, f"call {fn!r}: {message}"))
    return problems


Functions = dict[str, ast.FunctionDef | ast.AsyncFunctionDef]


def script_functions(script: Path, shown: str) -> Functions:
    """The functions defined at the top of ``script`` (parsed, never run), by name;
    SyntaxError (naming ``shown`` and the line) if it is not valid Python. Pages' ``call``
    actions and dataflows' ``script`` steps are both checked with it."""
    tree = ast.parse(script.read_bytes(), filename=shown)
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def not_callable(functions: Functions, name: str, shown: str) -> str | None:
    """Why function ``name`` of script ``shown`` cannot be called (missing, or async: pages
    and dataflows call plain functions), or None."""
    found = functions.get(name)
    if found is None:
        known = ", ".join(f for f, n in functions.items() if isinstance(n, ast.FunctionDef))
        return f"no function {name!r} in {shown} (functions: {known or 'none'})"
    if isinstance(found, ast.AsyncFunctionDef):
        return f"{name!r} in {shown}:{found.lineno} is async; call plain functions"
    return None


def _calls(pages: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    """(path of the ``call`` key, function name) of every call action of every page."""
    for page_name, page in pages.items():
        for i, node in enumerate(page.layout):
            yield from _node_calls(["pages", page_name, "layout", i], node)


def _node_calls(path: Path_, node: Node) -> Iterator[tuple[Path_, str]]:
    actions: list[tuple[Path_, Any]] = []
    if node.button is not None:
        actions.append(([*path, "button", "action"], node.button.action))
    if node.grid is not None and node.grid.on_row_click is not None:
        actions.append(([*path, "grid", "on_row_click"], node.grid.on_row_click))
    for kind in ("list_view", "tree"):
        spec = getattr(node, kind)
        if spec is not None and spec.on_select is not None:
            actions.append(([*path, kind, "on_select"], spec.on_select))
    for where, action in actions:
        yield from _action_calls(where, action)
    for child_path, child in _children(path, node):
        yield from _node_calls(child_path, child)


def _action_calls(path: Path_, action: Any) -> Iterator[tuple[Path_, str]]:
    if isinstance(action, list):
        for i, step in enumerate(action):
            yield from _action_calls([*path, i], step)
    elif isinstance(action, Action) and action.call is not None:
        yield [*path, "call"], action.call
