"""The ``pages`` section of a component: trees of containers and controls, and actions.

```yaml
pages:
  all:
    title: All invoices
    layout:
      - grid: {columns: [number, title, amount, due_date, status], filter: {status: {ne: 3}},
               on_row_click: {open_page: edit, params: {id: row.id}}}
      - button: {text: Add invoice, action: {open_page: edit}}
  edit:
    title: Add/View invoice
    params: [id]
    layout:
      - field: number
      - field: status
        control: radio
      - panel:
          direction: horizontal
          children:
            - button: {text: Save, action: save}
            - button: {text: Save and close, action: [save, back]}
            - button: {text: Mark paid, action: [{set: {status: 3}}, save, back]}
            - button: {text: Back, action: back}
```

An action is one of ``save``, ``delete``, ``back``, ``close``, or a mapping with one of
``open_page``, ``open``, ``set`` (put values into the page's form), ``run_dataflow``,
``run_workflow``, ``call``; or a list of those, run in order until one fails (a save that
the engine refuses stops the list, so "save then close" never closes over lost input).

Each layout node has exactly one kind key (``field``, ``grid``, ``button``, ``panel``,
``tabs``, ``label``, ``html``, ``link``, ``image``) plus the common properties (``name``:
what the component's script calls the node, unique in its page). Shapes are
checked by these models; references (fields, pages, components, control kinds) by
:func:`check_pages`, each problem with its path so the loader can give its line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from ..users import ROLE_NAME

# The control kinds a `field` node may ask for; appbook.kernels.ui.defaults implements each
# (a test keeps the two lists equal).
CONTROL_KINDS = (
    "text", "password", "textarea", "code", "number", "slider", "checkbox", "switch",
    "select", "radio", "multiselect", "date", "time", "datetime", "reference", "file",
)  # fmt: skip
NODE_KINDS = (
    "field", "grid", "button", "panel", "tabs", "label", "html", "link", "image",
    "chart", "pivot", "list_view", "tree",
)  # fmt: skip
AGGREGATES = Literal["count", "sum", "avg", "min", "max"]
SIMPLE_ACTIONS = ("save", "delete", "back", "close")
ACTION_KINDS = ("open_page", "open", "set", "run_dataflow", "run_workflow", "call")
SYSTEM_COLUMNS = ("id", "created_at", "updated_at", "created_by", "updated_by", "version")
WHERE_OPERATORS = ("and", "or", "not")
PARAM_SOURCES = ("row.", "record.", "params.")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(_Model):
    """What a button or a row click does (exactly one key)."""

    open_page: StrictStr | None = Field(None, description="A page of this component.")
    open: OpenOther | None = Field(None, description="A page of another component.")
    run_dataflow: StrictStr | None = None
    run_workflow: StrictStr | None = None
    call: StrictStr | None = Field(None, description="A function of the component's script.")
    set: dict[StrictStr, Any] | None = Field(
        None, description="Field -> value to put into the page's form (then e.g. save)."
    )
    params: dict[StrictStr, Any] = Field(
        default_factory=dict, description="row.x, record.x, params.x or literals."
    )
    dialog: StrictBool = Field(False, description="Open the page as a dialog over this one.")

    @model_validator(mode="after")
    def _one_kind(self) -> Action:
        kinds = [k for k in ACTION_KINDS if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError(
                f"an action has exactly one of {', '.join(ACTION_KINDS)} "
                f"(or is one of {', '.join(SIMPLE_ACTIONS)}, or a list of actions)"
            )
        return self


class OpenOther(_Model):
    """Another component's page."""

    component: StrictStr
    page: StrictStr


SingleAction = Literal["save", "delete", "back", "close"] | Action
ActionSpec = SingleAction | list[SingleAction]


class GridSpec(_Model):
    """A data grid of this component's records."""

    columns: list[StrictStr] | None = None
    filter: dict[StrictStr, Any] | None = Field(None, description="A static where, always applied.")
    order_by: list[StrictStr] | None = None
    page_size: StrictInt = Field(25, ge=1, le=500)
    on_row_click: ActionSpec | None = None
    live: StrictBool = True


class ChartSpec(_Model):
    """A bar, line or pie chart of this component's records, or of an aggregate by ``x``."""

    kind: Literal["bar", "line", "pie"] = "bar"
    x: StrictStr
    y: StrictStr | None = None
    aggregate: AGGREGATES | None = Field(None, description="One point per value of x.")
    filter: dict[StrictStr, Any] | None = None
    order_by: list[StrictStr] | None = None
    limit: StrictInt = Field(1000, ge=1, le=10000)
    live: StrictBool = True


class PivotSpec(_Model):
    """Rows by one field, columns by another, cells an aggregate of a third."""

    rows: StrictStr
    columns: StrictStr
    aggregate: AGGREGATES = "count"
    value: StrictStr | None = Field(None, description="The field sum/avg/min/max apply to.")
    filter: dict[StrictStr, Any] | None = None
    live: StrictBool = True


class ListSpec(_Model):
    """A paged list of records shown as a title and subtitles."""

    title: StrictStr
    subtitle: list[StrictStr] = Field(default_factory=list)
    filter: dict[StrictStr, Any] | None = None
    order_by: list[StrictStr] | None = None
    page_size: StrictInt = Field(10, ge=1, le=200)
    on_select: ActionSpec | None = None
    live: StrictBool = True


class TreeSpec(_Model):
    """Records of a self-referencing component as a tree (children loaded on expand)."""

    parent: StrictStr = Field(description="The reference field to this same component.")
    label: StrictStr
    filter: dict[StrictStr, Any] | None = None
    order_by: list[StrictStr] | None = None
    on_select: ActionSpec | None = None
    live: StrictBool = True


class ButtonSpec(_Model):
    """A button and its action."""

    text: StrictStr
    action: ActionSpec
    style: Literal["primary", "success", "info", "warning", "danger", ""] = ""


class PanelSpec(_Model):
    """A vertical or horizontal box of children."""

    direction: Literal["vertical", "horizontal", "grid"] = "vertical"
    columns: StrictInt | None = Field(None, ge=1, le=12, description="For direction: grid.")
    children: list[Node]


class LinkSpec(_Model):
    """A hyperlink."""

    text: StrictStr
    url: StrictStr


class Node(_Model):
    """One layout node: exactly one kind key, plus common properties."""

    field: StrictStr | None = None
    grid: GridSpec | None = None
    button: ButtonSpec | None = None
    panel: PanelSpec | None = None
    tabs: dict[StrictStr, list[Node]] | None = None
    label: StrictStr | None = None
    html: StrictStr | None = None
    link: LinkSpec | None = None
    image: StrictStr | None = Field(None, description="A file field name or a file id.")
    chart: ChartSpec | None = None
    pivot: PivotSpec | None = None
    list_view: ListSpec | None = None
    tree: TreeSpec | None = None
    # common properties
    control: StrictStr | None = Field(None, description="Control kind for a field node.")
    title: StrictStr | None = None
    disabled: StrictBool = False
    visible: StrictBool = True
    required: StrictBool | None = None
    placeholder: StrictStr | None = None
    width: StrictStr | None = None
    css_class: StrictStr | None = None
    name: StrictStr | None = Field(
        None, description="What scripts call this node: context.controls[name]."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Node:
        kinds = [k for k in NODE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            raise ValueError(
                f"a layout node has exactly one of {', '.join(NODE_KINDS)} (found: {found})"
            )
        return self

    @property
    def kind(self) -> str:
        """Which kind of node this is."""
        return next(k for k in NODE_KINDS if getattr(self, k) is not None)


class PageDef(_Model):
    """A page: a title, the parameters it takes, a layout."""

    title: StrictStr | None = None
    params: list[StrictStr] = Field(default_factory=list)
    dialog: StrictBool = Field(False, description="Shown as a modal dialog over the opener.")
    roles: list[StrictStr] | None = Field(
        None, description="Only users holding one of these roles (and makers) may open it."
    )
    layout: list[Node]

    @field_validator("roles")
    @classmethod
    def _role_names(cls, roles: list[str] | None) -> list[str] | None:
        # A role no user can hold (a typo in case, say) would lock the page silently.
        if roles is None:
            return None
        if not roles:
            raise ValueError(
                "list at least one role, or leave roles out for a page every app user may open"
            )
        for role in roles:
            if not ROLE_NAME.fullmatch(role):
                raise ValueError(
                    f"{role!r} is not a role name: lower-case letters, digits, _ and - "
                    "(starting with a letter), as `appbook users add --role` takes them"
                )
        return roles


def check_pages(
    name: str,
    fields: Mapping[str, Any],
    pages: Mapping[str, PageDef],
    components: Mapping[str, Any],
) -> Iterator[tuple[list[str | int], str]]:
    """(path, problem) for every unknown field, control kind, page or component reference."""
    for page_name, page in pages.items():
        named: set[str] = set()
        for i, node in enumerate(page.layout):
            path: list[str | int] = ["pages", page_name, "layout", i]
            yield from _node(path, node, fields, pages, components)
            for where, duplicate in _names(path, node, named):
                yield [*where, "name"], f"another node of page {page_name!r} is named {duplicate!r}"
            for where, tree in _trees(path, node):
                parent = fields.get(tree.parent)
                if parent is not None and (parent.type != "reference" or parent.to != name):
                    yield (
                        [*where, "tree", "parent"],
                        f"{tree.parent!r} is not a reference to {name} itself "
                        "(a tree needs a self-reference)",
                    )


def _children(path: list[str | int], node: Node) -> Iterator[tuple[list[str | int], Node]]:
    """The nodes directly inside ``node`` (a panel's children, each tab's), with their paths."""
    for j, child in enumerate(node.panel.children if node.panel else []):
        yield [*path, "panel", "children", j], child
    for tab, children in (node.tabs or {}).items():
        for j, child in enumerate(children):
            yield [*path, "tabs", tab, j], child


def _names(
    path: list[str | int], node: Node, seen: set[str]
) -> Iterator[tuple[list[str | int], str]]:
    """Nodes in ``node`` and below named like one seen before on the page (``seen`` grows)."""
    if node.name is not None:
        if node.name in seen:
            yield path, node.name
        seen.add(node.name)
    for child_path, child in _children(path, node):
        yield from _names(child_path, child, seen)


def _trees(path: list[str | int], node: Node) -> Iterator[tuple[list[str | int], TreeSpec]]:
    """Every tree in ``node`` and below, with its path."""
    if node.tree is not None:
        yield path, node.tree
    for child_path, child in _children(path, node):
        yield from _trees(child_path, child)


def _node(
    path: list[str | int],
    node: Node,
    fields: Mapping[str, Any],
    pages: Mapping[str, PageDef],
    comps: Mapping[str, Any],
) -> Iterator[tuple[list[str | int], str]]:
    if node.field is not None and node.field not in fields:
        yield [*path, "field"], f"unknown field {node.field!r} (fields: {', '.join(fields)})"
    if node.control is not None:
        if node.field is None:
            yield [*path, "control"], "control applies to field nodes only"
        elif node.control not in CONTROL_KINDS:
            yield (
                [*path, "control"],
                f"unknown control {node.control!r} (controls: {', '.join(CONTROL_KINDS)})",
            )
    if node.grid is not None:
        known = (*fields, *SYSTEM_COLUMNS)
        for j, column in enumerate(node.grid.columns or []):
            if column not in known:
                yield [*path, "grid", "columns", j], f"unknown field {column!r}"
        for j, key in enumerate(node.grid.order_by or []):
            if key.lstrip("-") not in known:
                yield [*path, "grid", "order_by", j], f"unknown field {key.lstrip('-')!r}"
        for where_path, name in _where_fields(node.grid.filter or {}):
            if name not in known:
                yield [*path, "grid", "filter", *where_path], f"unknown field {name!r}"
        if node.grid.on_row_click is not None:
            yield from _action(
                [*path, "grid", "on_row_click"], node.grid.on_row_click, pages, comps, fields
            )
    yield from _views(path, node, fields, pages, comps)
    if node.button is not None:
        yield from _action([*path, "button", "action"], node.button.action, pages, comps, fields)
    for child_path, child in _children(path, node):
        yield from _node(child_path, child, fields, pages, comps)


def _views(
    path: list[str | int],
    node: Node,
    fields: Mapping[str, Any],
    pages: Mapping[str, PageDef],
    comps: Mapping[str, Any],
) -> Iterator[tuple[list[str | int], str]]:
    """Fields named by charts, pivots, lists and trees, their filters, orders and actions."""
    known = (*fields, *SYSTEM_COLUMNS)
    for kind in ("chart", "pivot", "list_view", "tree"):
        spec = getattr(node, kind)
        if spec is None:
            continue
        named: list[tuple[list[str | int], str | None]] = [
            ([key], getattr(spec, key, None))
            for key in ("x", "y", "rows", "columns", "value", "title", "parent", "label")
        ]
        named += [(["subtitle", i], f) for i, f in enumerate(getattr(spec, "subtitle", []))]
        named += [
            (["order_by", i], k.lstrip("-"))
            for i, k in enumerate(getattr(spec, "order_by", None) or [])
        ]
        named += [(["filter", *p], f) for p, f in _where_fields(spec.filter or {})]
        for where, name in named:
            if name is not None and name not in known:
                yield [*path, kind, *where], f"unknown field {name!r}"
        on_select = getattr(spec, "on_select", None)
        if on_select is not None:
            yield from _action([*path, kind, "on_select"], on_select, pages, comps, fields)


def _where_fields(
    where: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[list[str | int], str]]:
    """(path, field name) of every field a static filter names (through and/or/not)."""
    if not isinstance(where, Mapping):
        return
    for key, value in where.items():
        if key in ("and", "or") and isinstance(value, list):
            for i, part in enumerate(value):
                yield from _where_fields(part, (*path, key, i))
        elif key == "not":
            yield from _where_fields(value, (*path, key))
        else:
            yield [*path, key], str(key)


def _action(
    path: list[str | int],
    action: Any,
    pages: Mapping[str, PageDef],
    comps: Mapping[str, Any],
    fields: Mapping[str, Any] | None = None,
) -> Iterator[tuple[list[str | int], str]]:
    if isinstance(action, list):
        for i, step in enumerate(action):
            yield from _action([*path, i], step, pages, comps, fields)
        return
    if not isinstance(action, Action):
        return
    for name in (action.set or {}) if fields is not None else ():
        if fields is not None and name not in fields:
            yield [*path, "set", name], f"unknown field {name!r} (fields: {', '.join(fields)})"
    if action.open_page is not None and action.open_page not in pages:
        yield (
            [*path, "open_page"],
            f"unknown page {action.open_page!r} (pages: {', '.join(pages) or 'none'})",
        )
    if action.open is not None:
        other = comps.get(action.open.component)
        if other is None:
            yield [*path, "open", "component"], f"unknown component {action.open.component!r}"
        elif action.open.page not in (other.pages or {}):
            yield (
                [*path, "open", "page"],
                f"component {action.open.component!r} has no page {action.open.page!r}",
            )
    for key, value in action.params.items():
        if isinstance(value, str) and "." in value and not value.startswith(PARAM_SOURCES):
            yield (
                [*path, "params", key],
                f"{value!r}: parameters come from row.*, record.*, params.* or are literals",
            )


Action.model_rebuild()
ListSpec.model_rebuild()
TreeSpec.model_rebuild()
PanelSpec.model_rebuild()
Node.model_rebuild()
