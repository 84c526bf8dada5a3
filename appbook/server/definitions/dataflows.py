"""The ``dataflows`` section of a component: stages of steps that read, transform and write.

```yaml
dataflows:
  add_car:
    title: Add a car
    stages:
      - name: prepare
        steps:
          - {name: form, action_model: {}}
          - {name: normalise, script: {function: normalise}}      # cars.py beside the YAML
      - name: save
        steps:
          - {name: save, update: {fields: {price: "item.price", plate: "item.plate"}}}
          - {name: answer, respond: {value: "items[0]"}}
```

Each step has exactly one kind key (:data:`KINDS`) and reads the items of its ``source``
(default: the step before it; input kinds read nothing). Expressions are compiled by
:mod:`appbook.server.expressions` (the evaluator dataflows run them with) and see ``item``
(per-item kinds), ``items`` (``calculate``, ``respond``), ``inputs``, ``record`` and
``actor``. A ``where`` operand written ``{$expr: "inputs.min"}`` is evaluated before the
query runs. :func:`check_dataflows` (in :mod:`.dataflow_checks`) checks what spans steps.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from .workflows import Notify

INPUT_KINDS = ("action_model", "empty_model", "get_record", "query", "import_file", "http_get")
TRANSFORM_KINDS = (
    "map", "filter", "join", "lookup", "group_by", "distinct", "expand", "calculate",
    "script", "dataflow",
)  # fmt: skip
OUTPUT_KINDS = (
    "create", "update", "delete", "deferred_update", "apply_deferred", "http_call",
    "export_file", "render_template", "run_workflow", "notify", "respond", "form_action",
)  # fmt: skip
KINDS = (*INPUT_KINDS, *TRANSFORM_KINDS, *OUTPUT_KINDS)
# Refused at publish, saying so, until they are built (never a silent no-op).
NOT_AVAILABLE: frozenset[str] = frozenset()
Expr = StrictStr
Chunk = Field(1000, ge=1, le=10_000)
IDENT = r"^[a-z_][a-z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ActionModel(_Model):
    """The record (or the form values) the dataflow was called with, as one item."""


class EmptyModel(_Model):
    """One item with every field of the component at its default (or None)."""

    component: StrictStr | None = None


class GetRecord(_Model):
    """One record by id (an expression)."""

    component: StrictStr | None = None
    id: Expr


class Query(_Model):
    """Records matching ``where`` (as the records API), read in chunks by keyset paging."""

    component: StrictStr | None = None
    where: dict[StrictStr, Any] | None = None
    order_by: list[StrictStr] | StrictStr | None = None
    limit: StrictInt | None = Field(None, ge=1)
    chunk_size: StrictInt = Chunk


def _sheet_name(name: str) -> str:
    if not 1 <= len(name) <= 31 or any(c in name for c in "[]:*?/\\"):
        raise ValueError(f"{name!r}: a sheet name has 1 to 31 characters, none of [ ] : * ? / \\")
    return name


SheetName = Annotated[StrictStr, AfterValidator(_sheet_name)]


class ImportFile(_Model):
    """Rows of a CSV, XLSX or JSON (array or JSON lines) file of the file store, read in
    chunks. ``file`` is an expression giving the file's id; ``format`` defaults to the
    file name's extension. CSV cells are text; XLSX cells keep their types (numbers,
    booleans, text, datetimes, a date-only cell as a date) and the first row of ``sheet``
    (default: the first sheet) is the header, every name present and distinct; wholly
    empty rows are skipped and formulas give the value saved with them."""

    file: Expr
    format: Literal["csv", "json", "jsonl", "xlsx"] | None = None
    sheet: SheetName | None = None


class HttpGet(_Model):
    """Items from an outside JSON API (through the guarded client): the answer's list, or
    ``items`` (an expression over ``response``); ``url``, ``params`` and ``headers`` are
    templates; ``secret`` names a secret sent as ``Authorization: Bearer …``."""

    url: StrictStr
    params: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    headers: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    secret: StrictStr | None = None
    items: Expr | None = None


class HttpCall(_Model):
    """One request per item; the answer goes on under ``into`` (status and JSON or text).
    Strings of ``body`` are templates over ``item`` (a lone ``{{ expr }}`` keeps its type);
    without a body the item is sent. The call is not undone if the run rolls back."""

    method: Literal["POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: StrictStr
    body: Any = None
    headers: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    secret: StrictStr | None = None
    into: StrictStr = "response"


class RenderTemplate(_Model):
    """A sandboxed Jinja2 template over ``items`` (``per_item``: over each ``item``).

    ``to: html`` (the default): the HTML text under ``into``, one item (or each item).
    ``to: pdf``: WeasyPrint makes a PDF of the HTML, stored in the file store as ``name``
    (a template, required) in ``folder`` once the run has committed, in the result's
    ``files`` under the step's name (``per_item``: one PDF per item, listed as
    ``{items, files: [...]}``) and opened by
    ``form_action {action: open_file, export: step}``; the items go on unchanged. Only
    ``data:`` URLs are fetched (inline images, fonts): nothing from the network or the
    server's files."""

    template: StrictStr
    to: Literal["html", "pdf"] = "html"
    into: StrictStr = "html"
    per_item: StrictBool = False
    name: StrictStr | None = None
    folder: StrictStr = ""


class MapStep(_Model):
    """Each item to ``{name: expression}``; ``keep`` adds them to the item instead."""

    fields: dict[StrictStr, Expr] = Field(min_length=1)
    keep: StrictBool = False


class Join(_Model):
    """Items of the source joined with those of step ``with`` on keys (left -> right)."""

    with_: StrictStr = Field(alias="with")
    on: dict[StrictStr, StrictStr] = Field(min_length=1)
    type: Literal["inner", "left"] = "inner"
    into: StrictStr | None = Field(None, description="Nest the match under this name.")


class Lookup(_Model):
    """The record of ``component`` whose ``by`` field equals ``value``, as item[into]."""

    component: StrictStr
    by: StrictStr = "id"
    value: Expr
    into: StrictStr
    required: StrictBool = False


class GroupBy(_Model):
    """One item per group of ``keys``, with metrics ``count``, ``sum(f)``, ``avg(f)``,
    ``min(f)``, ``max(f)``."""

    keys: list[StrictStr] = Field(default_factory=list)
    metrics: dict[StrictStr, StrictStr] = Field(default_factory=lambda: {"count": "count"})


class Distinct(_Model):
    """The first item of each distinct combination of ``fields`` (all fields if none)."""

    fields: list[StrictStr] | None = None


class Expand(_Model):
    """One item per element of the array ``field`` (the element under ``as``)."""

    field: StrictStr
    as_: StrictStr | None = Field(None, alias="as")


class Calculate(_Model):
    """One item of ``{name: expression}`` over all ``items`` of the source."""

    fields: dict[StrictStr, Expr] = Field(min_length=1)


class Script(_Model):
    """``function(items[, context])`` of the component's ``<component>.py``, per chunk."""

    function: StrictStr = Field(pattern=IDENT)
    chunk_size: StrictInt = Chunk


class CallDataflow(_Model):
    """Run another dataflow (in this transaction), once or once per item (``per_item``)."""

    name: StrictStr
    component: StrictStr | None = None
    inputs: dict[StrictStr, Expr] = Field(default_factory=dict)
    per_item: StrictBool = False


class Create(_Model):
    """Create one record per item; ``fields`` maps fields to expressions (default: the
    item's values of the component's fields)."""

    component: StrictStr | None = None
    fields: dict[StrictStr, Expr] | None = None


class Update(_Model):
    """Update the record of each item, found by ``id`` (an expression, default
    ``item.id``) or by the ``key`` field; ``mark_for_deletion`` (an expression) deletes
    the record instead when it holds."""

    component: StrictStr | None = None
    id: Expr | None = None
    key: StrictStr | None = None
    fields: dict[StrictStr, Expr] | None = None
    mark_for_deletion: Expr | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Update:
        if self.id is not None and self.key is not None:
            raise ValueError("an update finds records by id or by key, not both")
        return self


class Delete(_Model):
    """Delete the record of each item (``id``, an expression, default ``item.id``)."""

    component: StrictStr | None = None
    id: Expr = "item.id"


class DeferredUpdate(_Model):
    """Like ``update``, but queued until an ``apply_deferred`` step writes them in batches."""

    component: StrictStr | None = None
    id: Expr | None = None
    key: StrictStr | None = None
    fields: dict[StrictStr, Expr] | None = None


class ApplyDeferred(_Model):
    """Write the queued deferred updates, ``chunk_size`` records per batch."""

    chunk_size: StrictInt = Field(500, ge=1, le=10_000)


class ExportFile(_Model):
    """The items as a CSV, XLSX, JSON or JSON-lines file, written as they stream (spooled
    to disk) and stored in the file store once the run has committed (a rolled-back run
    stores nothing); the items go on. ``name`` is a template; the stored file is in the
    result's ``files`` under the step's name, and ``form_action {action: open_file,
    export: step}`` opens it. The columns are ``fields`` (default: the first item's keys).
    XLSX: one sheet (``sheet``, default ``Sheet1``) with a header row, values with their
    types (datetimes in UTC, dicts and lists as JSON text, text never a formula)."""

    format: Literal["csv", "json", "jsonl", "xlsx"] = "csv"
    name: StrictStr
    folder: StrictStr = ""
    fields: list[StrictStr] | None = None
    sheet: SheetName | None = None


class RunWorkflow(_Model):
    """Start a workflow for each item (on ``record_id``) once the dataflow has committed."""

    workflow: StrictStr
    component: StrictStr | None = None
    record_id: Expr | None = None
    inputs: dict[StrictStr, Expr] = Field(default_factory=dict)


class Respond(_Model):
    """What the caller receives: ``value`` over ``items`` (default: the items)."""

    value: Expr | None = None


class FormAction(_Model):
    """Tell the calling page to open a page or a dialog, open a file, or refresh.
    ``open_file`` opens ``file`` (an expression giving a file id) or the file stored by
    ``export``: an ``export_file`` step or a ``render_template`` step ``to: pdf`` (not
    ``per_item``) before this one."""

    action: Literal["open_page", "open_dialog", "open_file", "refresh"]
    page: StrictStr | None = None
    params: dict[StrictStr, Expr] = Field(default_factory=dict)
    file: Expr | None = None
    export: StrictStr | None = Field(
        None, description="An export_file or render_template (to: pdf) step: open its file."
    )


class Step(_Model):
    """One step: a name, exactly one kind key, and the step it reads from."""

    name: StrictStr = Field(pattern=r"^[a-z][a-z0-9_]*$")
    source: StrictStr | None = None
    action_model: ActionModel | None = None
    empty_model: EmptyModel | None = None
    get_record: GetRecord | None = None
    query: Query | None = None
    import_file: ImportFile | None = None
    http_get: HttpGet | None = None
    map: MapStep | None = None
    filter: Expr | None = None
    join: Join | None = None
    lookup: Lookup | None = None
    group_by: GroupBy | None = None
    distinct: Distinct | None = None
    expand: Expand | None = None
    calculate: Calculate | None = None
    script: Script | None = None
    dataflow: CallDataflow | None = None
    create: Create | None = None
    update: Update | None = None
    delete: Delete | None = None
    deferred_update: DeferredUpdate | None = None
    apply_deferred: ApplyDeferred | None = None
    http_call: HttpCall | None = None
    export_file: ExportFile | None = None
    render_template: RenderTemplate | None = None
    run_workflow: RunWorkflow | None = None
    notify: Notify | None = None  # as in workflows; sent per item after the commit
    respond: Respond | None = None
    form_action: FormAction | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            raise ValueError(f"a step has exactly one kind key (found: {found})")
        return self

    @property
    def kind(self) -> str:
        """Which kind of step this is."""
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def config(self) -> Any:
        """The configuration under the kind key."""
        return getattr(self, self.kind)


class Stage(_Model):
    """A named group of steps, run in order."""

    name: StrictStr
    steps: list[Step] = Field(min_length=1)


class DataflowDef(_Model):
    """A dataflow: a title and its stages."""

    title: StrictStr | None = None
    description: StrictStr | None = None
    stages: list[Stage] = Field(min_length=1)

    def steps(self) -> list[tuple[list[str | int], Stage, Step]]:
        """(path within the dataflow, stage, step) in order."""
        return [
            (["stages", i, "steps", j], stage, step)
            for i, stage in enumerate(self.stages)
            for j, step in enumerate(stage.steps)
        ]

    def has_scripts(self) -> bool:
        """Whether any step runs component code (such runs leave the server process)."""
        return any(step.kind == "script" for _, _, step in self.steps())
