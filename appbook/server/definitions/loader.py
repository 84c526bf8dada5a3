"""Read component definition files, keeping line numbers for every error.

ruamel.yaml's round-trip loader records where each key and item sits, so a pydantic error
location such as ``("fields", "amount", "min")`` becomes ``invoices.component.yaml:7``.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ..errors import DefinitionError, Problem
from .models import FIELD_TYPES, ComponentDef, FieldDef

SUFFIX = ".component.yaml"
Loc = Sequence[str | int]


@dataclass(frozen=True)
class Source:
    """A parsed definition file: its data and where each key sits."""

    file: str
    tree: Any
    folder: Path | None = None  # the file's folder, when read from disk (notebooks beside it)

    def line_of(self, loc: Loc) -> int | None:
        """1-based line of the deepest key or item of ``loc`` found in the file."""
        node, line = self.tree, 1 if self.tree is not None else None
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line

    def problem(self, loc: Loc, message: str) -> Problem:
        """A :class:`Problem` at ``loc`` in this file."""
        return Problem(self.file, self.line_of(loc), dotted(loc), message)


@dataclass(frozen=True)
class Loaded:
    """A valid component definition and the file it came from."""

    definition: ComponentDef
    source: Source


def dotted(loc: Loc) -> str:
    """``("fields", "amount", "min")`` -> ``fields.amount.min``; list items as ``[2]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(text: str, file: str) -> tuple[Source | None, list[Problem]]:
    """Parse YAML text; a syntax error becomes a problem with its line."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        return None, [Problem(file, line, "", f"invalid YAML: {reason}")]
    except YAMLError as exc:  # e.g. a control character the YAML reader refuses
        line = _reader_line(text, getattr(exc, "position", None))
        reason = str(exc).splitlines()[0]
        return None, [Problem(file, line, "", f"invalid YAML: {reason}")]
    return Source(file, tree), []


def _reader_line(text: str, position: int | None) -> int | None:
    return None if position is None else text.count("\n", 0, position) + 1


def to_plain(node: Any) -> Any:
    """ruamel's commented containers -> plain dicts and lists."""
    if isinstance(node, dict):
        return {k: to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node


def validate(source: Source) -> tuple[ComponentDef | None, list[Problem]]:
    """Check one parsed file against the models; every problem at once."""
    if not isinstance(source.tree, dict):
        kind = "empty file" if source.tree is None else f"got {type(source.tree).__name__}"
        return None, [
            Problem(source.file, 1, "", f"expected a mapping with name and fields ({kind})")
        ]
    try:
        return ComponentDef.model_validate(to_plain(source.tree)), []
    except pydantic.ValidationError as exc:
        # A union (e.g. int | float) reports once per branch: keep one message per location.
        by_loc = {tuple(_trim(e["loc"])): _message(e) for e in exc.errors()}
        return None, [source.problem(loc, msg) for loc, msg in by_loc.items()]


def _trim(loc: Loc) -> list[str | int]:
    # pydantic adds union/tagged-branch names (e.g. "int", "constrained-int") to locations.
    branches = {"int", "float", "str", "bool", "list[any]", "dict[str,any]", "constrained-int"}
    return [p for p in loc if not (isinstance(p, str) and p in branches)]


def _got(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _message(err: Any) -> str:
    kind, value, loc = err["type"], err.get("input"), err["loc"]
    if kind == "extra_forbidden":
        return _unknown_option(loc)
    if kind == "missing":
        return "is required"
    if kind == "literal_error" and loc and loc[-1] == "type" and FieldDef in _models_at(loc[:-1]):
        return f"unknown field type {_got(value)}; expected one of {', '.join(FIELD_TYPES)}"
    if kind in {"float_type", "int_type", "int_from_float", "float_parsing", "int_parsing"}:
        expected = "an integer" if kind.startswith("int") else "a number"
        return f"expected {expected}, got {_got(value)}"
    if kind == "bool_type":
        return f"expected true or false, got {_got(value)}"
    if kind == "string_type":
        return f"expected text, got {_got(value)}"
    if kind == "string_pattern_mismatch":
        rule = "lowercase letters, digits and _, starting with a letter"
        return f"{_got(value)} is not a valid name ({rule})"
    if kind in {"dict_type", "model_type"}:
        return f"expected a mapping, got {_got(value)}"
    return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {_got(value)}"


def _unknown_option(loc: Loc) -> str:
    name = str(loc[-1])
    known = sorted({key for model in _models_at(loc[:-1]) for key in _keys(model)})
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if not close and len(loc) >= 2:
        # A key of the enclosing mapping written inside one of its values, as in
        # `- panel: {name: extra, ...}` for `- {panel: {...}, name: extra}`.
        outer = {key for model in _models_at(loc[:-2]) for key in _keys(model)}
        if name in outer:
            hint = f" ({name!r} goes beside {loc[-2]!r}, not inside it)"
    return f"unknown option {name!r}{hint}"


def _models_at(loc: Loc) -> list[type[pydantic.BaseModel]]:
    """The models that can sit at ``loc`` of a component (several where a union leaves it
    open), walking the annotations from :class:`ComponentDef`: so an unknown key is matched
    against the options of its own model (a step's ``query``, a page's button), not a
    field's."""
    types: list[Any] = [ComponentDef]
    for part in loc:
        types = [inner for t in types for inner in _inside(t, part)]
    flat = [member for t in types for member in _members(t)]
    return [t for t in flat if isinstance(t, type) and issubclass(t, pydantic.BaseModel)]


def _members(annotation: Any) -> list[Any]:
    """The types ``annotation`` may be (the members of a union, unwrapped)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _members(args[0])
    if origin in (typing.Union, types.UnionType):
        return [member for arg in args for member in _members(arg)]
    return [annotation]


def _inside(annotation: Any, part: str | int) -> list[Any]:
    """What ``annotation`` holds under key or index ``part``."""
    members = _members(annotation)
    if members != [annotation]:
        return [inner for member in members for inner in _inside(member, part)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        if part == annotation.__name__:  # pydantic names the branch of a union it tried
            return [annotation]
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return [info.annotation]
        return []
    if origin in (dict, Mapping) and len(args) == 2:
        return [args[1]]
    if origin in (list, Sequence) and args and isinstance(part, int):
        return [args[0]]
    return []


def _keys(model: type[pydantic.BaseModel]) -> Iterable[str]:
    """The keys a definition writes for ``model``'s fields (aliases where they have one)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def read_file(path: Path, display: str | None = None) -> tuple[Source | None, list[Problem]]:
    """Read and parse one file (``display`` is the name errors use)."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, None, "", f"cannot read file: {exc}")]
    source, problems = parse(text, name)
    return (replace(source, folder=path.parent) if source else None), problems


def find_files(directory: Path) -> list[Path]:
    """Every ``*.component.yaml`` under ``directory``, in a stable order."""
    if not directory.is_dir():
        raise DefinitionError([Problem(str(directory), None, "", "not a directory")])
    return sorted(p for p in directory.rglob(f"*{SUFFIX}") if ".ipynb_checkpoints" not in p.parts)
