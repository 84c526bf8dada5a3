"""The tree view: records of a self-referencing component as an expandable tree.

A component whose ``parent`` field references the component itself (categories in
categories, employees and their managers) is a forest: the records without a parent are
the roots. The tree loads lazily: it reads the roots, and the children of a node when the
node is expanded, one :meth:`ComponentHandle.query
<appbook.server.handle.ComponentHandle.query>` per level (up to ``limit`` nodes, then a
"… more" line). One :meth:`ComponentHandle.aggregate
<appbook.server.handle.ComponentHandle.aggregate>` per level counts the children of its
nodes, so leaves show no expander. A collapsed node forgets its subtree, and expanding
reads it again, so what shows is never older than the last click (or, with ``live=True``,
than the last change).

Naming a parent field that is not a reference to the component itself raises
``ValueError``; a field the component lacks raises the engine's ``QueryError``. Engine
errors while loading go to the status line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Bool, Int, observe

from ...server.errors import AppbookError
from ...server.query import field_of
from .grid_filters import cell_text
from .live import LiveRefresh, follow
from .status import StatusLine
from .views import SafeActions, open_record

if TYPE_CHECKING:
    from ...server.engine import Appbook

log = logging.getLogger(__name__)

INDENT = 24  # pixels per level
EXPANDERS = {"open": "\u25be", "closed": "\u25b8", "leaf": "\u00b7"}
Select = Callable[[dict[str, Any]], object]
Key = int | None  # a node's id, or None for the roots


@dataclass
class Level:
    """The loaded children of one node: its records and how many more were not loaded."""

    records: list[dict[str, Any]]
    more: int


class TreeView(SafeActions, widgets.VBox):  # type: ignore[misc]
    """Records of a self-referencing component as a lazily loaded, expandable tree.

    ``parent`` is the reference field to the component itself, ``label`` the field each
    node shows; ``where`` filters every level and ``order_by`` orders the siblings (by
    ``label`` when not given). Each shown node has an expander (``toggle_buttons[id]``) and
    a label button (``label_buttons[id]``) that passes the whole record to ``on_select``.
    """

    selected_id = Int(None, allow_none=True, help="The id of the last selected record.")
    revision = Int(0, help="Goes up by one each time nodes are loaded.")
    live = Bool(False, help="Reload the shown levels when records change (event bus).")

    def __init__(
        self,
        app: Appbook,
        component: str,
        parent: str,
        label: str,
        *,
        where: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int = 200,
        on_select: Select | None = None,
        live: bool = False,
        **kwargs: Any,
    ) -> None:
        self.app, self.component = app, component
        self.handle = app[component]
        defn = self.handle.definition
        link = field_of(defn, parent, "parent")
        if link.type != "reference" or link.to != defn.name:
            found = (
                f"a reference to {link.to}" if link.type == "reference" else f"of type {link.type}"
            )
            raise ValueError(
                f"parent: {parent!r} must be a reference to {defn.name} itself, it is {found}"
            )
        self.parent, self.label = parent, label
        self.label_field = field_of(defn, label, "label")
        self.where: dict[str, Any] = dict(where or {})
        self.order_by = order_by or [label]
        self.limit = limit
        self.on_select = on_select
        self._lock = threading.RLock()
        self._levels: dict[Key, Level] = {}
        self._has_children: dict[int, bool] = {}
        self._expanded: set[int] = set()
        self._rows: dict[int, widgets.HBox] = {}
        self._notes: list[widgets.HTML] = []
        self._watcher: LiveRefresh | None = None
        self.body = widgets.VBox()
        self.status = StatusLine()
        super().__init__(children=[self.body, self.status], **kwargs)
        self.add_class("appbook-tree")
        self.live = live  # subscribe before the first load, so no change falls in between
        self.refresh()

    # -- the public API ---------------------------------------------------------------
    def children_of(self, record_id: int | None = None) -> list[dict[str, Any]]:
        """The loaded children of a node (the roots for ``None``); [] if not loaded."""
        level = self._levels.get(record_id)
        return [dict(r) for r in level.records] if level else []

    @property
    def visible(self) -> list[tuple[int, dict[str, Any]]]:
        """``(depth, record)`` of every shown node, top to bottom (roots at depth 0)."""
        return [(d, dict(r)) for d, r, _ in self._walk(None, 0, set()) if r is not None]

    @property
    def expanded(self) -> frozenset[int]:
        """The ids of the expanded nodes."""
        return frozenset(self._expanded)

    @property
    def toggle_buttons(self) -> dict[int, widgets.Button]:
        """The expander of each shown node, by id."""
        return {i: row.children[0] for i, row in self._rows.items()}

    @property
    def label_buttons(self) -> dict[int, widgets.Button]:
        """The label button of each shown node, by id (a click selects the record)."""
        return {i: row.children[1] for i, row in self._rows.items()}

    def expand(self, record_id: int) -> bool:
        """Read the children of a shown node and show them; True if the engine answered."""
        with self._lock:
            self._shown(record_id)
            try:
                level, counts = self._fetch(record_id)
            except Exception as exc:
                self._failed("expansion", exc)
                return False
            self._levels[record_id] = level
            self._has_children.update(counts)
            self._expanded.add(record_id)
            self._render()
            return True

    def collapse(self, record_id: int) -> None:
        """Hide the subtree of a shown node (and forget it: expanding reads it again)."""
        with self._lock:
            self._shown(record_id)
            self._expanded.discard(record_id)
            self._forget(record_id)
            self._render()

    def toggle(self, record_id: int) -> bool:
        """Expand a collapsed node or collapse an expanded one; False if loading failed."""
        if record_id in self._expanded:
            self.collapse(record_id)
            return True
        return self.expand(record_id)

    def select(self, record_id: int) -> dict[str, Any] | None:
        """Read the whole record and pass it to ``on_select``; ``None`` if it is gone."""
        self._shown(record_id)
        return open_record(self, record_id)

    def refresh(self) -> bool:
        """Reload the roots and the children of every expanded node; True if it worked."""
        with self._lock:
            levels: dict[Key, Level] = {}
            counts: dict[int, bool] = {}
            waiting: list[Key] = [None]
            try:
                while waiting:
                    key = waiting.pop(0)
                    levels[key], found = self._fetch(key)
                    counts.update(found)
                    waiting += [r["id"] for r in levels[key].records if r["id"] in self._expanded]
            except Exception as exc:
                self._failed("tree", exc)
                return False
            self._levels, self._has_children = levels, counts
            self._expanded &= {k for k in levels if k is not None}
            self._render()
            return True

    def close(self) -> None:
        """Stop live updates and close the tree's widgets."""
        self.live = False
        if hasattr(self, "body"):  # not if the configuration was refused
            for row in self._rows.values():
                _close_row(row)
            for widget in (*self._notes, self.body, self.status):
                widget.close()
        super().close()

    # -- loading ----------------------------------------------------------------------
    def _fetch(self, key: Key) -> tuple[Level, dict[int, bool]]:
        """The children of ``key`` and, for each of them, whether it has children."""
        page = self.handle.query(
            self._within({self.parent: {"is_null": True} if key is None else key}),
            order_by=self.order_by,
            limit=self.limit,
            fields=list(dict.fromkeys([self.label, self.parent])),
            total=True,
        )
        ids = [r["id"] for r in page]
        counts: dict[int, bool] = dict.fromkeys(ids, False)
        if ids:
            groups = self.handle.aggregate(
                [self.parent], {"n": "count"}, where=self._within({self.parent: {"in": ids}})
            )
            counts.update({g[self.parent]: g["n"] > 0 for g in groups})
        return Level(list(page), (page.total or 0) - len(ids)), counts

    def _within(self, condition: dict[str, Any]) -> dict[str, Any]:
        return {"and": [self.where, condition]} if self.where else condition

    def _forget(self, record_id: int) -> None:
        level = self._levels.pop(record_id, None)
        for record in level.records if level else ():
            self._expanded.discard(record["id"])
            self._forget(record["id"])

    def _shown(self, record_id: int) -> None:
        if record_id not in self._rows:
            raise KeyError(f"record {record_id} is not shown in this tree")

    def _failed(self, what: str, exc: Exception) -> None:
        if isinstance(exc, AppbookError):
            self.status.show("error", exc.message)
            return
        # Viewers never see a traceback; the maker finds it in the kernel log.
        log.exception("the %s of the tree of %s failed", what, self.component)
        self.status.show(
            "error", f"The {what} failed ({type(exc).__name__}); the kernel log has the details."
        )

    # -- widgets ----------------------------------------------------------------------
    def _walk(
        self, key: Key, depth: int, seen: set[int]
    ) -> Iterator[tuple[int, dict[str, Any] | None, int]]:
        """``(depth, record, 0)`` per shown node and ``(depth, None, n)`` per "n more" line."""
        level = self._levels.get(key)
        if level is None:
            return
        for record in level.records:
            if record["id"] in seen:
                continue  # a node that moved while its levels were read: show it once
            seen.add(record["id"])
            yield depth, record, 0
            if record["id"] in self._expanded:
                yield from self._walk(record["id"], depth + 1, seen)
        if level.more:
            yield depth, None, level.more

    def _render(self) -> None:
        old_rows, old_notes = self._rows, self._notes
        self._rows, self._notes = {}, []
        lines = []
        for depth, record, more in self._walk(None, 0, set()):
            if record is None:
                note = widgets.HTML(
                    f"\u2026 {more:,} more",
                    layout=widgets.Layout(margin=f"0 0 0 {depth * INDENT + 32}px"),
                )
                self._notes.append(note)
                lines.append(note)
                continue
            row = old_rows.pop(record["id"], None) or self._new_row(record["id"])
            self._update_row(row, record, depth)
            self._rows[record["id"]] = row
            lines.append(row)
        self.body.children = lines
        self.status.show("", "")
        for row in old_rows.values():
            _close_row(row)
        for note in old_notes:
            note.close()
        self.revision += 1

    def _new_row(self, record_id: int) -> widgets.HBox:
        toggle = widgets.Button(layout=widgets.Layout(width="32px"))
        toggle.on_click(lambda _: self._safely("expansion", lambda: self.toggle(record_id)))
        label = widgets.Button(layout=widgets.Layout(width="auto"))
        label.on_click(lambda _: self._safely("selection", lambda: self.select(record_id)))
        return widgets.HBox([toggle, label])

    def _update_row(self, row: widgets.HBox, record: dict[str, Any], depth: int) -> None:
        toggle, label = row.children
        record_id = record["id"]
        if record_id in self._expanded:
            toggle.description, toggle.disabled = EXPANDERS["open"], False
        elif self._has_children.get(record_id, True):
            toggle.description, toggle.disabled = EXPANDERS["closed"], False
        else:
            toggle.description, toggle.disabled = EXPANDERS["leaf"], True
        text = cell_text(self.label_field, record.get(self.label)) or f"#{record_id}"
        label.description, label.tooltip = text, text
        label.button_style = "info" if record_id == self.selected_id else ""
        row.layout.margin = f"0 0 0 {depth * INDENT}px"

    @observe("selected_id")
    def _on_selected(self, change: dict[str, Any]) -> None:
        for record_id, label in self.label_buttons.items():
            label.button_style = "info" if record_id == change["new"] else ""

    @observe("live")
    def _on_live(self, change: dict[str, Any]) -> None:
        self._watcher = follow(
            self._watcher,
            change["new"],
            self.app,
            self.component,
            self.refresh,
            partial(self._failed, "live update"),
        )


def _close_row(row: widgets.HBox) -> None:
    for child in row.children:
        child.close()
    row.close()
