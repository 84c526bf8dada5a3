"""Component definitions: read ``*.component.yaml`` files, check them, report every problem.

>>> defs = load_directory(Path("notebooks/examples"))   # raises DefinitionError
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import DefinitionError, Problem
from .checks import check_component, check_set
from .loader import SUFFIX, Loaded, Source, find_files, parse, read_file, validate
from .models import FIELD_TYPES, SYSTEM_FIELDS, ComponentDef, FieldDef

__all__ = [
    "FIELD_TYPES",
    "SUFFIX",
    "SYSTEM_FIELDS",
    "ComponentDef",
    "FieldDef",
    "Loaded",
    "from_snapshot",
    "json_schema",
    "load_directory",
    "load_texts",
]


def load_directory(directory: Path) -> list[Loaded]:
    """Every component under ``directory``, checked together; raises with all problems."""
    directory = Path(directory)
    sources = [read_file(p, str(p.relative_to(directory))) for p in find_files(directory)]
    if not sources:
        raise DefinitionError([Problem(str(directory), None, "", f"no *{SUFFIX} files found")])
    return _check_all(sources)


def load_texts(texts: Mapping[str, str]) -> list[Loaded]:
    """Components from ``{file name: YAML text}``, checked together."""
    if not texts:
        raise DefinitionError([Problem("<bundle>", None, "", "no component definitions given")])
    return _check_all([parse(text, name) for name, text in texts.items()])


def _check_all(parsed: list[tuple[Source | None, list[Problem]]]) -> list[Loaded]:
    problems: list[Problem] = []
    loaded: list[Loaded] = []
    for source, errors in parsed:
        problems += errors
        if source is None:
            continue
        definition, errors = validate(source)
        problems += errors
        if definition is not None:
            problems += check_component(definition, source)
            loaded.append(Loaded(definition, source))
    problems += check_set(loaded)
    if problems:
        raise DefinitionError(problems)
    return loaded


def from_snapshot(snapshot: Mapping[str, Any]) -> dict[str, ComponentDef]:
    """The definitions stored in a publication, by component name."""
    return {name: ComponentDef.model_validate(data) for name, data in snapshot.items()}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a component definition file (``appbook schema``)."""
    schema = ComponentDef.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Appbook component definition (*.component.yaml)"
    return schema
