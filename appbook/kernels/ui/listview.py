"""The list view: records as a vertical list of items, a page at a time.

Each item shows a title (one field) over a subtitle (one or more fields joined by " · ")
and an "Open" button that passes the whole record to ``on_select``. Paging follows the
data grid: each page is one :meth:`ComponentHandle.query
<appbook.server.handle.ComponentHandle.query>` with the engine's keyset cursor, and the
list keeps the cursors of the pages before the current one to go back. Values show as grid
cells do (enum labels, ✓/✗, ``#id`` for references). A field the component lacks raises
the engine's ``QueryError``; engine errors while loading go to the status line.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Bool, Int, observe

from ...server.errors import AppbookError
from ...server.query import field_of
from .grid_filters import cell_text
from .live import LiveRefresh, follow
from .status import StatusLine
from .views import KeysetPaging, SafeActions, open_record

if TYPE_CHECKING:
    from ...server.engine import Appbook

log = logging.getLogger(__name__)

Select = Callable[[dict[str, Any]], object]


class ListView(KeysetPaging, SafeActions, widgets.VBox):  # type: ignore[misc]
    """A paged list of one component's records, each a title, a subtitle and a button.

    ``where`` filters and ``order_by`` orders the records (by id when not given). The parts
    are public for pages and tests: ``item_buttons`` and ``item_texts`` (one per slot of the
    page, hidden when unused), ``pager_buttons`` (previous, next), ``page_label`` and
    ``status``.
    """

    page = Int(0, help="The index of the current page (0 for the first).")
    total = Int(None, allow_none=True, help="How many records match (None until counted).")
    selected_id = Int(None, allow_none=True, help="The id of the last selected record.")
    revision = Int(0, help="Goes up by one each time items are loaded.")
    live = Bool(False, help="Reload when the component's records change (event bus).")

    def __init__(
        self,
        app: Appbook,
        component: str,
        title: str,
        subtitle: str | Sequence[str] = (),
        *,
        where: Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        page_size: int = 10,
        on_select: Select | None = None,
        live: bool = False,
        **kwargs: Any,
    ) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size: expected 1 to 1,000 items, got {page_size}")
        self.app, self.component = app, component
        self.handle = app[component]
        defn = self.handle.definition
        self.subtitles = [subtitle] if isinstance(subtitle, str) else list(subtitle)
        self.fields = {title: field_of(defn, title, "title")}
        self.fields.update({n: field_of(defn, n, "subtitle") for n in self.subtitles})
        self.title = title
        self.where: dict[str, Any] = dict(where or {})
        self.order_by = order_by
        self.page_size = page_size
        self.on_select = on_select
        self._lock = threading.RLock()
        self._stack: list[str | None] = [None]  # start cursor of each page up to this one
        self._records: list[dict[str, Any]] = []
        self._next: str | None = None
        self._watcher: LiveRefresh | None = None
        self._build()
        super().__init__(children=[self._items, self._pager, self.status], **kwargs)
        self.add_class("appbook-list")
        self.live = live  # subscribe before the first load, so no change falls in between
        if not self._load([None], count=True):
            self._render()  # the empty list, over the error

    # -- the public API ---------------------------------------------------------------
    @property
    def items(self) -> list[dict[str, Any]]:
        """The records of the current page (``id``, the title and subtitle fields)."""
        return [dict(r) for r in self._records]

    def select(self, index: int) -> dict[str, Any] | None:
        """Select item ``index`` of the page: read the whole record, pass it to ``on_select``.

        Returns the record, or ``None`` if it no longer exists (the list then reloads).
        """
        if not 0 <= index < len(self._records):
            raise IndexError(f"item {index} is not on this page ({len(self._records)} items)")
        return open_record(self, self._records[index]["id"])

    def close(self) -> None:
        """Stop live updates and close the list's widgets."""
        self.live = False
        for widget in getattr(self, "_parts", ()):  # none if the configuration was refused
            widget.close()
        super().close()

    # -- loading ----------------------------------------------------------------------
    def _load(self, stack: list[str | None], *, count: bool) -> bool:
        with self._lock:
            try:
                page = self.handle.query(
                    self.where,
                    order_by=self.order_by,
                    limit=self.page_size,
                    cursor=stack[-1],
                    fields=list(self.fields),
                    total=count,
                )
            except Exception as exc:
                self._failed("list", exc)
                return False
            self._stack, self._records, self._next = list(stack), list(page), page.next_cursor
            if count:
                self.total = page.total
            self.page = len(stack) - 1
            self.status.show("", "")
            self._render()
            self.revision += 1
            return True

    def _failed(self, what: str, exc: Exception) -> None:
        if isinstance(exc, AppbookError):
            self.status.show("error", exc.message)
            return
        # Viewers never see a traceback; the maker finds it in the kernel log.
        log.exception("the %s of the list of %s failed", what, self.component)
        self.status.show(
            "error", f"The {what} failed ({type(exc).__name__}); the kernel log has the details."
        )

    # -- widgets ----------------------------------------------------------------------
    def _build(self) -> None:
        """A pool of ``page_size`` items (text and "Open" button), then the pager."""
        self.item_texts: list[widgets.HTML] = []
        self.item_buttons: list[widgets.Button] = []
        rows = []
        for i in range(self.page_size):
            text = widgets.HTML(layout=widgets.Layout(flex="1 1 auto"))
            button = widgets.Button(description="Open", icon="chevron-right")
            button.on_click(lambda _, i=i: self._clicked(i))
            hidden = widgets.Layout(display="none", align_items="center")
            rows.append(widgets.HBox([text, button], layout=hidden))
            self.item_texts.append(text)
            self.item_buttons.append(button)
        self._items = widgets.VBox(rows)
        self.pager_buttons = [
            widgets.Button(description="Previous", icon="angle-left"),
            widgets.Button(description="Next", icon="angle-right"),
        ]
        self.pager_buttons[0].on_click(lambda _: self._safely("paging", self.prev_page))
        self.pager_buttons[1].on_click(lambda _: self._safely("paging", self.next_page))
        self.page_label = widgets.HTML()
        self._pager = widgets.HBox([*self.pager_buttons, self.page_label])
        self.status = StatusLine()
        self._parts = [*self.item_texts, *self.item_buttons, *rows, *self.pager_buttons,
                       self.page_label, self._pager, self._items, self.status]  # fmt: skip

    def _render(self) -> None:
        for i, row in enumerate(self._items.children):
            if i < len(self._records):
                self.item_texts[i].value = self._item_html(self._records[i])
            row.layout.display = "" if i < len(self._records) else "none"
        first = self.page * self.page_size + 1
        last = first + len(self._records) - 1
        shown = f"items {first}\u2013{last}" if self._records else "no items"
        of = f" of {self.total:,}" if self.total is not None else ""
        self.page_label.value = f"{shown}{of}"
        self.pager_buttons[0].disabled = len(self._stack) <= 1
        self.pager_buttons[1].disabled = self._next is None

    def _item_html(self, record: dict[str, Any]) -> str:
        title = cell_text(self.fields[self.title], record.get(self.title)) or f"#{record['id']}"
        parts = [cell_text(self.fields[n], record.get(n)) for n in self.subtitles]
        subtitle = " \u00b7 ".join(p for p in parts if p)
        return (
            f'<div class="appbook-list-title" style="font-weight:600">{html.escape(title)}</div>'
            f'<div class="appbook-list-subtitle" style="color:#666">{html.escape(subtitle)}</div>'
        )

    def _clicked(self, index: int) -> None:
        self._safely("selection", lambda: self.select(index))

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
