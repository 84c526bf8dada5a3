"""Rules that span options or components, each reported with its own path and line."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence

from ..errors import Problem
from ..validation import Invalid, coerce
from .dataflow_checks import check_dataflows
from .loader import Loaded, Source
from .models import NUMERIC_TYPES, SYSTEM_FIELDS, TEXT_TYPES, ComponentDef, FieldDef
from .pages import check_pages
from .scripts import check_script
from .sizes import SizeError, parse_size
from .workflows import check_workflows

RESERVED_PREFIX = "appbook_"

# Which options make sense for which field types.
OPTION_TYPES: dict[str, frozenset[str]] = {
    "min": NUMERIC_TYPES,
    "max": NUMERIC_TYPES,
    "min_length": TEXT_TYPES | {"array"},
    "max_length": TEXT_TYPES | {"array"},
    "pattern": TEXT_TYPES,
    "choices": frozenset({"enum"}),
    "of": frozenset({"array"}),
    "accept": frozenset({"file"}),
    "max_size": frozenset({"file"}),
}


def check_component(defn: ComponentDef, src: Source) -> list[Problem]:
    """Every rule of one component that its model cannot express."""
    problems = []
    if defn.name.startswith(RESERVED_PREFIX):
        problems.append(
            src.problem(["name"], f"names starting with {RESERVED_PREFIX!r} are reserved")
        )
    for name, field in defn.fields.items():
        problems += [
            src.problem(["fields", name, *loc], msg) for loc, msg in _field_rules(name, field)
        ]
    return problems


def _field_rules(name: str, f: FieldDef) -> Iterator[tuple[list[str], str]]:
    if name in SYSTEM_FIELDS:
        yield [], f"{name!r} is a system field every record has; choose another name"
    for option, types in OPTION_TYPES.items():
        if getattr(f, option) is not None and f.type not in types:
            yield [option], f"not an option of {f.type} fields (only {', '.join(sorted(types))})"
    yield from _type_rules(f)
    if f.unique and f.type in ("json", "array"):
        yield ["unique"], f"{f.type} fields cannot be unique"
    if f.virtual and (f.unique or f.indexed):
        yield ["virtual"], "virtual fields are not stored, so they cannot be unique or indexed"
    if f.min is not None and f.max is not None and f.min > f.max:
        yield ["min"], f"min ({f.min}) is greater than max ({f.max})"
    if f.min_length is not None and f.max_length is not None and f.min_length > f.max_length:
        yield (
            ["min_length"],
            f"min_length ({f.min_length}) is greater than max_length ({f.max_length})",
        )
    if f.pattern is not None:
        try:
            re.compile(f.pattern)
        except re.error as exc:
            yield ["pattern"], f"invalid regular expression: {exc}"
            return
    if f.max_size is not None and f.type == "file":
        try:
            parse_size(f.max_size)
        except SizeError as exc:
            yield ["max_size"], str(exc)
    if f.default is not None:
        try:
            coerce(f, f.default)
        except Invalid as exc:
            yield ["default"], f"default {exc}"


def _type_rules(f: FieldDef) -> Iterator[tuple[list[str], str]]:
    if f.type == "enum":
        values = f.choice_values()
        if not values:
            yield ["choices"], "enum fields need choices (value: label)"
        elif len({type(v) for v in values}) > 1:
            yield ["choices"], "choice values must be all integers or all strings"
        elif len(set(values)) != len(values):
            yield ["choices"], "choice values must be distinct"
    references = f.type == "reference" or (f.type == "array" and f.of == "reference")
    if references and f.to is None:
        yield ["to"], "reference fields need 'to': the component they point to"
    if f.to is not None and not references:
        yield ["to"], "only reference fields (or arrays of references) take 'to'"
    if f.type == "array" and f.of is None:
        yield ["of"], "array fields need 'of': the type of their items"


def check_set(loaded: Sequence[Loaded]) -> list[Problem]:
    """Rules across components: unique names, references to known components."""
    problems: list[Problem] = []
    by_name: dict[str, list[Loaded]] = defaultdict(list)
    for item in loaded:
        by_name[item.definition.name].append(item)
    for name, items in by_name.items():
        if len(items) > 1:
            files = ", ".join(i.source.file for i in items)
            problems += [
                i.source.problem(["name"], f"duplicate component name {name!r} (in {files})")
                for i in items
            ]
    definitions = {name: items[0].definition for name, items in by_name.items()}
    for item in loaded:
        defn = item.definition
        for loc, message in check_pages(defn.name, defn.fields, defn.pages or {}, definitions):
            problems.append(item.source.problem(loc, message))
        flows = defn.workflows or {}
        found = check_workflows(flows, defn.fields, item.source.folder, list(defn.dataflows or {}))
        problems += [item.source.problem(loc, message) for loc, message in found]
        for loc, message in check_dataflows(defn, definitions, item.source.folder):
            problems.append(item.source.problem(loc, message))
        problems += check_script(item)
        for fname, field in item.definition.fields.items():
            if field.to is not None and field.to not in by_name:
                known = ", ".join(sorted(by_name)) or "none"
                msg = f"unknown component {field.to!r} (known: {known})"
                problems.append(item.source.problem(["fields", fname, "to"], msg))
    return problems
