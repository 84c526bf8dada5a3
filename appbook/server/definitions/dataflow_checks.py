"""Checks of ``dataflows`` that span steps and components, each with its path (so the
loader gives its line): sources and joins that read a later or unknown step, kinds not
available yet (none today), files opened from steps that store none, unknown components,
fields, pages, workflows, dataflows and script functions, expressions that do not
compile, deferred updates never applied."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .dataflows import INPUT_KINDS, NOT_AVAILABLE, DataflowDef, Step
from .scripts import not_callable, script_functions

if TYPE_CHECKING:
    from .models import ComponentDef

Problems = Iterator[tuple[list[str | int], str]]
Path_ = list[str | int]
_METRIC = re.compile(r"^\s*(count|sum|avg|min|max)\s*(?:\(\s*([A-Za-z_][A-Za-z0-9_]*)?\s*\))?\s*$")
_EXPR_KEYS = {
    "get_record": ("id",),
    "import_file": ("file",),
    "lookup": ("value",),
    "update": ("id", "mark_for_deletion"),
    "deferred_update": ("id",),
    "delete": ("id",),
    "run_workflow": ("record_id",),
    "respond": ("value",),
    "http_get": ("items",),
    "form_action": ("file",),
}
_EXPR_MAPS = {
    "map": "fields",
    "calculate": "fields",
    "create": "fields",
    "update": "fields",
    "deferred_update": "fields",
    "dataflow": "inputs",
    "run_workflow": "inputs",
    "form_action": "params",
}


def check_dataflows(
    defn: ComponentDef, definitions: Mapping[str, ComponentDef], folder: Path | None = None
) -> Problems:
    """(path, problem) for everything wrong in ``defn.dataflows`` that shapes cannot say."""
    for name, flow in (defn.dataflows or {}).items():
        yield from _dataflow(["dataflows", name], flow, defn, definitions, folder)


def _dataflow(
    path: Path_,
    flow: DataflowDef,
    defn: ComponentDef,
    definitions: Mapping[str, ComponentDef],
    folder: Path | None,
) -> Problems:
    seen: list[str] = []
    deferred: Path_ | None = None
    for i, (where, _, step) in enumerate(flow.steps()):
        here = [*path, *where]
        if step.name in seen:
            yield [*here, "name"], f"step name {step.name!r} is used twice"
        yield from _source(here, i, step, seen)
        if step.kind in NOT_AVAILABLE:
            yield [*here, step.kind], f"{step.kind} steps are not available yet"
        yield from _sheet(here, step)
        if step.form_action is not None and step.form_action.export is not None:
            yield from _export(here, step.form_action.export, [s for _, _, s in flow.steps()[:i]])
        yield from _expressions([*here, step.kind], step)
        yield from _references([*here, step.kind], step, defn, definitions, folder, seen)
        if step.kind == "deferred_update":
            deferred = deferred or [*here, "deferred_update"]
        if step.kind == "apply_deferred":
            deferred = None
        seen.append(step.name)
    if deferred is not None:
        yield deferred, "deferred updates are written by an apply_deferred step after them"


def _sheet(here: Path_, step: Step) -> Problems:
    """``sheet`` is for xlsx files only (a format named otherwise cannot have one)."""
    config = step.import_file or step.export_file
    if config is not None and config.sheet is not None and config.format not in (None, "xlsx"):
        yield [*here, step.kind, "sheet"], f"only xlsx files have sheets (format: {config.format})"


def _export(here: Path_, name: str, earlier: list[Step]) -> Problems:
    """``form_action.export`` names an earlier step that stores one file."""
    stores = [
        s.name
        for s in earlier
        if s.kind == "export_file"
        or (s.render_template is not None and s.render_template.to == "pdf")
    ]
    per_item = [
        s.name for s in earlier if s.render_template is not None and s.render_template.per_item
    ]
    if name in stores and name in per_item:
        msg = f"{name!r} stores one PDF per item: open_file opens one file (file: an id)"
        yield [*here, "form_action", "export"], msg
    elif name not in stores:
        known = ", ".join(stores) or "none"
        msg = (
            "not an export_file or render_template (to: pdf) step before this one "
            f"(such steps: {known})"
        )
        yield [*here, "form_action", "export"], msg


def _source(here: Path_, index: int, step: Step, seen: list[str]) -> Problems:
    if step.kind in INPUT_KINDS:
        if step.source is not None:
            yield [*here, "source"], f"{step.kind} steps read no source"
        return
    if index == 0:
        yield [*here, step.kind], "the first step must be an input step (it has nothing to read)"
    elif step.source is not None and step.source not in seen:
        yield [*here, "source"], _unknown_step(step.source, seen)
    if step.join is not None and step.join.with_ not in seen:
        yield [*here, "join", "with"], _unknown_step(step.join.with_, seen)


def _unknown_step(name: str, seen: list[str]) -> str:
    earlier = ", ".join(seen) or "none"
    return f"{name!r} is not a step before this one (earlier steps: {earlier})"


def _expressions(here: Path_, step: Step) -> Problems:
    config = step.config
    if step.kind == "filter":
        yield from _expression(here, config)
    for key in _EXPR_KEYS.get(step.kind, ()):
        if getattr(config, key) is not None:
            yield from _expression([*here, key], getattr(config, key))
    mapping = _EXPR_MAPS.get(step.kind)
    for key, text in ((getattr(config, mapping) or {}) if mapping else {}).items():
        yield from _expression([*here, mapping or "", key], text)
    if step.query is not None and step.query.where is not None:
        yield from _where_expressions([*here, "where"], step.query.where)
    yield from _templates(here, step)


def _templates(here: Path_, step: Step) -> Problems:
    """URLs, headers, params and notification texts compile as sandboxed templates."""
    from ..expressions import ExpressionError, compile_template

    texts: list[tuple[Path_, str]] = []
    http = step.http_get or step.http_call
    if http is not None:
        texts.append((["url"], http.url))
        texts += [(["headers", k], v) for k, v in http.headers.items()]
    if step.http_get is not None:
        texts += [(["params", k], v) for k, v in step.http_get.params.items()]
    if step.notify is not None and step.notify.email is not None:
        mail = step.notify.email
        texts += [(["email", "to"], mail.to), (["email", "subject"], mail.subject)]
        texts.append((["email", "body"], mail.body))
    if step.notify is not None and step.notify.webhook is not None:
        texts.append((["webhook", "url"], step.notify.webhook.url))
    if step.export_file is not None:
        texts.append((["name"], step.export_file.name))
    if step.render_template is not None:
        render = step.render_template
        texts.append((["template"], render.template))
        if render.to == "pdf" and render.name is None:
            yield [*here, "name"], "to: pdf needs name: the stored PDF's file name (a template)"
        if render.to == "html" and (render.name is not None or render.folder):
            yield [*here, "to"], "name and folder are for to: pdf (HTML goes on under into)"
        if render.name is not None:
            texts.append((["name"], render.name))
    for key, text in texts:
        try:
            compile_template(text)
        except ExpressionError as exc:
            yield [*here, *key], exc.message


def _where_expressions(here: Path_, node: Any) -> Problems:
    if isinstance(node, dict):
        if set(node) == {"$expr"}:
            yield from _expression([*here, "$expr"], node["$expr"])
            return
        for key, value in node.items():
            yield from _where_expressions([*here, key], value)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _where_expressions([*here, i], value)


def _expression(here: Path_, text: Any) -> Problems:
    from ..expressions import ExpressionError, compile_expression

    if not isinstance(text, str):
        yield here, f"expected an expression (text), got {text!r}"
        return
    try:
        compile_expression(text)
    except ExpressionError as exc:
        yield here, exc.message


def _references(
    here: Path_,
    step: Step,
    defn: ComponentDef,
    definitions: Mapping[str, ComponentDef],
    folder: Path | None,
    seen: list[str],
) -> Problems:
    config = step.config
    target_name = getattr(config, "component", None) or defn.name
    target = definitions.get(target_name)
    if target is None:
        known = ", ".join(sorted(definitions))
        yield [*here, "component"], f"unknown component {target_name!r} (known: {known})"
        return
    for key, name in _fields_named(step):
        if name != "id" and name not in target.stored_fields():
            fields = ", ".join(["id", *target.stored_fields()])
            yield [*here, *key], f"unknown field {name!r} of {target.name} (fields: {fields})"
    if step.group_by is not None:
        for label, spec in step.group_by.metrics.items():
            if _METRIC.match(spec) is None:
                yield (
                    [*here, "metrics", label],
                    f"expected count or sum/avg/min/max(field), got {spec!r}",
                )
    if step.dataflow is not None and step.dataflow.name not in (target.dataflows or {}):
        known = ", ".join(target.dataflows or {}) or "none"
        msg = f"unknown dataflow {step.dataflow.name!r} of {target.name} (dataflows: {known})"
        yield [*here, "name"], msg
    if step.run_workflow is not None and step.run_workflow.workflow not in (target.workflows or {}):
        known = ", ".join(target.workflows or {}) or "none"
        msg = (
            f"unknown workflow {step.run_workflow.workflow!r} of {target.name} (workflows: {known})"
        )
        yield [*here, "workflow"], msg
    yield from _form_action(here, step, target)
    if step.script is not None and folder is not None:
        yield from _script([*here, "function"], folder / f"{defn.name}.py", step.script.function)


def _fields_named(step: Step) -> Iterator[tuple[Path_, str]]:
    config = step.config
    if step.kind in ("create", "update", "deferred_update"):
        for name in config.fields or {}:
            yield ["fields", name], name
        if getattr(config, "key", None) is not None:
            yield ["key"], config.key
    if step.lookup is not None:
        yield ["by"], step.lookup.by
    if step.query is not None:
        for name in step.query.where or {}:
            if name not in ("and", "or", "not"):
                yield ["where", name], name
        orders = step.query.order_by
        for i, name in enumerate([orders] if isinstance(orders, str) else orders or []):
            yield ["order_by", i], name.lstrip("-")


def _form_action(here: Path_, step: Step, target: ComponentDef) -> Problems:
    action = step.form_action
    if action is None:
        return
    if action.action in ("open_page", "open_dialog"):
        if action.page is None:
            yield here, f"{action.action} needs page: the page to open"
        elif action.page not in (target.pages or {}):
            known = ", ".join(target.pages or {}) or "none"
            yield [*here, "page"], f"unknown page {action.page!r} of {target.name} (pages: {known})"
    if action.action == "open_file" and (action.file is None) == (action.export is None):
        yield here, "open_file needs file (an expression giving the file id) or export (a step)"


def _script(here: Path_, script: Path, function: str) -> Problems:
    """The function is defined at the top of ``<component>.py`` (parsed, never run here)."""
    if not script.is_file():
        yield here, f"script steps need {script.name} beside the definition (none found)"
        return
    try:
        functions = script_functions(script, script.name)
    except SyntaxError as exc:
        yield here, f"{script.name} line {exc.lineno}: {exc.msg}"
        return
    message = not_callable(functions, function, script.name)
    if message is not None:
        yield here, message
