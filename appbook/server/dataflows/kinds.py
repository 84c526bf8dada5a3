"""Which function runs each step kind."""

from __future__ import annotations

from collections.abc import Callable

from . import calls, files, inputs, outputs, outside, scripts, transforms
from .context import Chunks, StepCall

Kind = Callable[[StepCall], Chunks]

KINDS: dict[str, Kind] = {
    "action_model": inputs.action_model,
    "empty_model": inputs.empty_model,
    "get_record": inputs.get_record,
    "query": inputs.query,
    "import_file": files.import_file,
    "http_get": outside.http_get,
    "map": transforms.map_items,
    "filter": transforms.filter_items,
    "join": transforms.join,
    "lookup": transforms.lookup,
    "group_by": transforms.group_by,
    "distinct": transforms.distinct,
    "expand": transforms.expand,
    "calculate": transforms.calculate,
    "script": scripts.script,
    "dataflow": calls.call_dataflow,
    "create": outputs.create,
    "update": outputs.update,
    "delete": outputs.delete,
    "deferred_update": outputs.deferred_update,
    "apply_deferred": outputs.apply_deferred,
    "http_call": outside.http_call,
    "notify": outside.notify,
    "export_file": files.export_file,
    "run_workflow": outputs.run_workflow,
    "render_template": outputs.render_template,
    "respond": outputs.respond,
    "form_action": outputs.form_action,
}
