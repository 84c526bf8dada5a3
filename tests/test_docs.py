"""The reference docs stay true to the code: ``docs/dataflows.md`` has a section and a
complete key table for every step kind, and its YAML examples load and pass the checks
publishing runs; ``docs/scripts.md`` names only context API that exists, and all of it."""

from __future__ import annotations

import ast
import functools
import re
import shutil
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from ruamel.yaml import YAML

from appbook.kernels.ui import context as context_module
from appbook.server.definitions import load_directory
from appbook.server.definitions.dataflows import INPUT_KINDS, KINDS, DataflowDef, Stage, Step
from appbook.server.errors import DefinitionError

ROOT = Path(__file__).parents[1]
DATAFLOWS_MD = ROOT / "docs" / "dataflows.md"
SCRIPTS_MD = ROOT / "docs" / "scripts.md"
EXAMPLES = ROOT / "notebooks" / "examples"


# -- reading markdown -----------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, first line number and text."""

    lang: str
    line: int
    text: str


def blocks(path: Path) -> list[Block]:
    """Every fenced code block of ``path``."""
    found: list[Block] = []
    lang: str | None = None
    start, body = 0, list[str]()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            if lang is None:
                lang, start, body = line[3:].strip(), n + 1, []
            else:
                found.append(Block(lang, start, "\n".join(body) + "\n"))
                lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{path.name}: a code block opened at line {start - 1} is not closed"
    return found


def sections(path: Path) -> dict[str, str]:
    """Heading text (backticks removed) -> the text up to the next heading, outside code."""
    out: dict[str, str] = {}
    heading, body, fenced = "", list[str](), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"^#{1,6} ", line):
            out[heading] = "\n".join(body)
            heading, body = line.lstrip("#").strip().replace("`", ""), []
        else:
            body.append(line)
    out[heading] = "\n".join(body)
    return out


def table(text: str) -> dict[str, str]:
    """The first column (backticks removed) -> the default column of the key tables."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or set(cells[0]) <= {"-", " "}:
            continue
        if cells[0] == "key":
            continue
        rows[cells[0].replace("`", "")] = cells[2].replace("`", "")
    return rows


# -- the step models ------------------------------------------------------------------
def key_of(name: str, info: FieldInfo) -> str:
    """The key a definition writes (the alias: ``with``, ``as``)."""
    return info.alias or name


def kind_model(kind: str) -> type[BaseModel] | None:
    """The configuration model under ``kind`` (None for ``filter``, an expression)."""
    annotation = Step.model_fields[kind].annotation
    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def model_keys(model: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo]:
    """Every key of ``model``, nested models' keys dotted (``email.to``)."""
    keys: dict[str, FieldInfo] = {}
    for name, info in model.model_fields.items():
        key = prefix + key_of(name, info)
        keys[key] = info
        nested = kind_model_of(info.annotation)
        if nested is not None:
            keys.update(model_keys(nested, key + "."))
    return keys


def kind_model_of(annotation: Any) -> type[BaseModel] | None:
    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def shown_default(info: FieldInfo) -> str:
    """A field's default as the tables write it."""
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    return _shown(value)


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def kind_section(kind: str) -> str:
    found = sections(DATAFLOWS_MD)
    assert kind in found, f"docs/dataflows.md has no '## {kind}' or '### {kind}' section"
    return found[kind]


# -- dataflows.md: sections and key tables ---------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_every_step_kind_has_a_section_with_an_example(kind: str) -> None:
    text = kind_section(kind)
    headings = re.findall(r"^#{2,3} `?(\w+)`?$", DATAFLOWS_MD.read_text(), re.M)
    assert kind in headings
    examples = [b for b in section_blocks(kind) if b.lang == "yaml"]
    assert any(kind in b.text for b in examples), f"section {kind}: no YAML example using it"
    assert "Publishing refuses" in text, f"section {kind}: say what publishing refuses"


def section_blocks(kind: str) -> list[Block]:
    """The code blocks between the heading of ``kind`` and the next heading."""
    lines = DATAFLOWS_MD.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^#{{2,3}} `?{kind}`?$", line))
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"^#{1,6} ", lines[i])), len(lines)
    )
    return [b for b in blocks(DATAFLOWS_MD) if start < b.line <= end]


@pytest.mark.parametrize("kind", KINDS)
def test_every_key_of_every_step_model_is_in_its_table_with_its_default(kind: str) -> None:
    documented = table(kind_section(kind))
    model = kind_model(kind)
    keys = model_keys(model) if model is not None else {}
    missing = sorted(set(keys) - set(documented))
    assert not missing, f"section {kind}: keys missing from its table: {', '.join(missing)}"
    unknown = set(documented) - set(keys)
    assert not unknown, f"section {kind}: the table has keys the model has not: {unknown}"
    for key, info in keys.items():
        assert documented[key] == shown_default(info), (
            f"section {kind}, key {key}: the table says default {documented[key]!r}, "
            f"the model {shown_default(info)!r}"
        )


def test_the_dataflow_stage_and_step_keys_are_in_the_general_table() -> None:
    documented = table(sections(DATAFLOWS_MD)["Stages, steps and items"])
    general = {
        **{key_of(n, i): i for n, i in DataflowDef.model_fields.items()},
        **{key_of(n, i): i for n, i in Stage.model_fields.items()},
        **{key_of(n, i): i for n, i in Step.model_fields.items() if n not in KINDS},
    }
    for key, info in general.items():
        assert key in documented, f"'Stages, steps and items' does not list {key}"
        assert documented[key] == shown_default(info), key


# -- dataflows.md: the YAML examples ------------------------------------------------------
def parsed(block: Block) -> Any:
    return YAML(typ="safe").load(block.text)


def yaml_blocks() -> list[Any]:
    return [
        pytest.param(b, id=f"dataflows.md:{b.line}")
        for b in blocks(DATAFLOWS_MD)
        if b.lang == "yaml"
    ]


def is_component(data: Any) -> bool:
    return isinstance(data, dict) and "name" in data and "fields" in data


@pytest.mark.parametrize("block", yaml_blocks())
def test_every_yaml_example_is_a_valid_component_step_list_or_excerpt(block: Block) -> None:
    data = parsed(block)
    if is_component(data):
        return  # test_the_full_components_publish loads these together
    if isinstance(data, list):
        for step in data:
            Step.model_validate(step)
        return
    assert isinstance(data, dict) and set(data) <= {"fields", "pages", "dataflows"}, (
        f"dataflows.md:{block.line}: a YAML example is a component (name, fields), a list of "
        "steps, or an excerpt (fields, pages, dataflows) of an example's component"
    )
    for flow in data.get("dataflows", {}).values():
        DataflowDef.model_validate(flow)
    origin = re.match(r"# from (\S+)", block.text)
    assert origin is not None, f"dataflows.md:{block.line}: say where the excerpt is from"
    real = YAML(typ="safe").load((ROOT / origin[1]).read_text(encoding="utf-8"))
    for section, entries in data.items():
        for name, value in entries.items():
            assert real[section][name] == value, f"{section}.{name} differs from {origin[1]}"


@pytest.mark.parametrize(
    "block", [b for b in yaml_blocks() if isinstance(parsed(b.values[0]), list)]
)
def test_every_step_list_passes_the_publish_checks(block: Block, tmp_path: Path) -> None:
    """A list of steps, as a dataflow of the car dealership's ``cars`` (an input step put
    first when it starts with another kind), published from a folder with the example's
    components and script and the page's own complete components."""
    example = block
    steps = parsed(example)
    if Step.model_validate(steps[0]).kind not in INPUT_KINDS:
        steps = [{"name": "doc_input", "action_model": {}}, *steps]
    shutil.copytree(EXAMPLES / "car_dealership", tmp_path, dirs_exist_ok=True)
    for component in (b for b in blocks(DATAFLOWS_MD) if b.lang == "yaml"):
        data = parsed(component)
        if is_component(data):
            (tmp_path / f"{data['name']}.component.yaml").write_text(component.text)
    cars = tmp_path / "cars.component.yaml"
    yaml = YAML(typ="rt")
    definition = yaml.load(cars.read_text(encoding="utf-8"))
    definition["dataflows"]["doc_example"] = {"stages": [{"name": "doc", "steps": steps}]}
    with cars.open("w", encoding="utf-8") as out:
        yaml.dump(definition, out)
    try:
        load_directory(tmp_path)
    except DefinitionError as exc:
        pytest.fail(f"dataflows.md:{example.line}: {exc}")


@pytest.mark.parametrize("doc", [DATAFLOWS_MD, SCRIPTS_MD], ids=lambda p: p.name)
def test_the_full_components_publish(doc: Path, tmp_path: Path) -> None:
    """The complete components of a page pass every publish-time check together, with
    the scripts the page gives them (python blocks headed ``# <component>.py``)."""
    components = [b for b in blocks(doc) if b.lang == "yaml" and is_component(parsed(b))]
    assert components, f"docs/{doc.name} shows no complete component"
    names = set()
    for block in components:
        name = parsed(block)["name"]
        assert name not in names, f"two complete components named {name} in the docs"
        names.add(name)
        (tmp_path / f"{name}.component.yaml").write_text(block.text, encoding="utf-8")
    for block in blocks(doc):
        head = re.match(r"# (\w+)\.py\n", block.text)
        if block.lang == "python" and head is not None and head[1] in names:
            with (tmp_path / f"{head[1]}.py").open("a", encoding="utf-8") as script:
                script.write(block.text)
    loaded = load_directory(tmp_path)
    assert {item.definition.name for item in loaded} == names
    for block in components:  # one that an example has is that example's, as it is
        data = parsed(block)
        for real in EXAMPLES.glob(f"*/{data['name']}.component.yaml"):
            assert data == YAML(typ="safe").load(real.read_text()), f"{doc.name}:{block.line}"


def test_the_walk_through_is_reference_app_3() -> None:
    """The component scripts.md rebuilds is the example's, and its script defines every
    function the example's does (same parameters; test_python_examples_... checks the
    converse)."""
    (component,) = [b for b in blocks(SCRIPTS_MD) if b.lang == "yaml" and is_component(parsed(b))]
    folder = EXAMPLES / "scripting"
    real = YAML(typ="safe").load((folder / "expenses.component.yaml").read_text())
    assert parsed(component) == real
    shown = [
        b for b in blocks(SCRIPTS_MD) if b.lang == "python" and b.text.startswith("# expenses.py\n")
    ]
    whole = ast.parse(shown[-1].text)
    example = ast.parse((folder / "expenses.py").read_text())
    names = {n.name for n in whole.body if _is_fn(n)}
    assert names == {n.name for n in example.body if _is_fn(n)}


@pytest.mark.parametrize("path", [DATAFLOWS_MD, SCRIPTS_MD], ids=lambda p: p.name)
def test_python_examples_parse_and_name_real_example_functions(path: Path) -> None:
    """Python blocks parse; one headed ``# <name>.py`` for a script of the examples only
    defines functions that script has, with the same parameters."""
    for block in blocks(path):
        if block.lang != "python":
            continue
        tree = ast.parse(block.text, filename=f"{path.name}:{block.line}")
        head = re.match(r"# (\w+)\.py\n", block.text)
        script = head[1] if head is not None else ""
        real_files = list(EXAMPLES.glob(f"*/{script}.py")) if script else []
        if not real_files:
            continue
        real = {f.name: f for f in ast.parse(real_files[0].read_text()).body if _is_fn(f)}
        for fn in (n for n in tree.body if _is_fn(n)):
            assert fn.name in real, f"{path.name}:{block.line}: {fn.name} is not in {script}.py"
            assert _params(fn) == _params(real[fn.name]), f"{path.name}:{block.line}: {fn.name}"


def _is_fn(node: ast.AST) -> typing.TypeGuard[ast.FunctionDef]:
    return isinstance(node, ast.FunctionDef)


def _params(node: ast.FunctionDef) -> list[str]:
    return [a.arg for a in node.args.args]


# -- scripts.md: the context API ----------------------------------------------------------
# ``context.a.b(...)["x"].c``: a name, then attributes, calls and subscripts.
CHAIN = re.compile(r"(?<![/\w.])context(?!\.py\b)((?:\.\w+|\([^()]*\)|\[[^\[\]]*\])+)")
SEGMENT = re.compile(r"\.(\w+)|(\()[^()]*\)|(\[)[^\[\]]*\]")
MODULE_CLASSES = {
    name: cls
    for name, cls in vars(context_module).items()
    if isinstance(cls, type) and cls.__module__ == context_module.__name__
}


def instance_attributes(cls: type) -> dict[str, Any]:
    """What ``__init__`` of a class of context.py sets on ``self`` (``self.record =
    Record(page)``): the module's class it is an instance of, else Any."""
    return _init_attributes().get(cls.__name__, {})


@functools.cache
def _init_attributes() -> dict[str, dict[str, Any]]:
    tree = ast.parse(Path(context_module.__file__ or "").read_text(encoding="utf-8"))
    found: dict[str, dict[str, Any]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        attrs = found.setdefault(cls.name, {})
        for init in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            if init.name != "__init__":
                continue
            for node in ast.walk(init):
                if isinstance(node, ast.Assign):
                    pairs = _assigned(node.targets, node.value)
                elif isinstance(node, ast.AnnAssign):
                    pairs = _assigned([node.target], node.value)
                else:
                    continue
                attrs.update(pairs)
    return found


def _assigned(targets: list[ast.expr], value: ast.expr | None) -> dict[str, Any]:
    """``self.x = Cls(...)`` -> {x: Cls}; ``self.a, self.b = ...`` -> {a: Any, b: Any}."""
    out: dict[str, Any] = {}
    for target in targets:
        for elt in target.elts if isinstance(target, ast.Tuple) else [target]:
            if isinstance(elt, ast.Attribute) and isinstance(elt.value, ast.Name):
                if elt.value.id != "self":
                    continue
                call = value.func if isinstance(value, ast.Call) else None
                name = call.id if isinstance(call, ast.Name) else ""
                out[elt.attr] = MODULE_CLASSES.get(name, Any)
    return out


def public_attributes(cls: type) -> set[str]:
    """The public API a class of context.py defines itself (not inherited from Mapping)."""
    names = {n for n in vars(cls) if not n.startswith("_")}
    if is_dataclass(cls):
        names |= {f.name for f in fields(cls)}
    names |= {n for n in instance_attributes(cls) if not n.startswith("_")}
    return names


def hints(function: Callable[..., Any]) -> dict[str, Any]:
    namespace = dict(vars(context_module))
    import logging

    from appbook.server.dataflows import DataflowResult
    from appbook.server.engine import Appbook

    namespace.update(logging=logging, DataflowResult=DataflowResult, Appbook=Appbook)
    try:
        return typing.get_type_hints(function, globalns=namespace)
    except (NameError, TypeError):
        return {}


@dataclass(frozen=True)
class Method:
    """A method reached by a chain, waiting for its call."""

    function: Callable[..., Any]


def resolve(cls: type, segments: list[tuple[str, str]], where: str) -> list[tuple[type, str]]:
    """Walk ``segments`` from ``cls``; the (class, attribute) pairs used. Fails on a name
    the class does not have; stops at a type it cannot follow (Any, a plain value)."""
    used: list[tuple[type, str]] = []
    current: type | Method | None = cls
    for kind, name in segments:
        if current is None:
            return used  # a plain value, or a type the annotations do not say
        if isinstance(current, Method):
            is_call = kind == "call"
            current = _class(hints(current.function).get("return")) if is_call else None
            continue
        if kind == "attr":
            used.append((current, name))
            current = _attribute(current, name, where)
        elif kind == "item":
            getitem = getattr(current, "__getitem__", None)
            current = _class(hints(getitem).get("return")) if getitem is not None else None
        else:
            current = None
    return used


def _attribute(cls: type, name: str, where: str) -> type | Method | None:
    """What ``cls.name`` is: a class to go on from, a method, or None (a plain value)."""
    if is_dataclass(cls) and name in {f.name for f in fields(cls)}:
        return None  # a plain value (name, roles, is_maker)
    attrs = instance_attributes(cls)
    if name in attrs:
        return _class(attrs[name])
    member = getattr(cls, name, None)
    assert member is not None, f"{where}: {cls.__name__} has no {name!r}"
    if isinstance(member, property):
        return _class(hints(member.fget).get("return")) if member.fget else None
    return Method(member) if callable(member) else None


def _class(annotation: Any) -> type | None:
    """The class an annotation names (``X | None`` as ``X``), or None."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = args[0] if len(args) == 1 else None
    if annotation is Any or not isinstance(annotation, type):
        return None
    return annotation


def chains(text: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    for match in CHAIN.finditer(text):
        segments = []
        for seg in SEGMENT.finditer(match[1]):
            if seg[1]:
                segments.append(("attr", seg[1]))
            elif seg[2]:
                segments.append(("call", ""))
            else:
                segments.append(("item", ""))
        yield match[0], segments


def documented_api() -> set[tuple[type, str]]:
    text = SCRIPTS_MD.read_text(encoding="utf-8")
    used: set[tuple[type, str]] = set()
    for shown, segments in chains(text):
        used.update(resolve(context_module.Context, segments, f"scripts.md: {shown}"))
    return used


def test_every_context_name_in_scripts_md_exists() -> None:
    assert documented_api(), "docs/scripts.md names no context API"


def test_every_public_context_attribute_is_documented() -> None:
    used = documented_api()
    missing = []
    for cls in MODULE_CLASSES.values():
        missing += [
            f"{cls.__name__}.{n}" for n in sorted(public_attributes(cls)) if (cls, n) not in used
        ]
    assert not missing, f"docs/scripts.md does not show: {', '.join(missing)}"


@pytest.mark.parametrize(
    "shown",
    [
        'context.form.get("amount").set_valu(1)',
        "context.controls['x'].hidden",
        "context.commands.go_back()",
        "context.user.email",
        "context.recrd.id",
    ],
)
def test_a_context_name_that_does_not_exist_is_caught(shown: str) -> None:
    ((_, segments),) = list(chains(shown))
    with pytest.raises(AssertionError, match="has no"):
        resolve(context_module.Context, segments, shown)


# -- links ------------------------------------------------------------------------------
LINKED = [
    DATAFLOWS_MD,
    SCRIPTS_MD,
    ROOT / "README.md",
    EXAMPLES / "car_dealership" / "README.md",
    EXAMPLES / "scripting" / "README.md",
]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to dashes."""
    text = heading.lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@pytest.mark.parametrize("page", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_to_the_reference_docs_resolve(page: Path) -> None:
    """Every relative link of these pages reaches a file, and its #anchor a heading."""
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: link to {target} which does not exist"
        if anchor:
            headings = [slug(h) for h in sections(path) if h]
            raw = re.findall(r"^#{1,6} (.+)$", path.read_text(), re.M)
            assert anchor in {slug(h) for h in raw} | set(headings), (
                f"{page.name}: no heading #{anchor} in {path.name}"
            )
