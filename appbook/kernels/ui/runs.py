"""The runs view: workflow runs in a table, a selected run's steps, and what you may do.

Top to bottom: filters (status, workflow) with a Refresh button, a table of runs newest first
(component, workflow, status, started by, started, duration; an "Open" button each), a pager,
then the selected run: a header (status, error, the approval it waits for), its step
timeline (each attempt's status, attempt number, duration and error) and the buttons that
apply to it for the viewing user (``app.actor``): Approve and Reject (with a comment) only
for the user the approval names or an enabled holder of its role, Retry for a failed or
timed-out run, Cancel for one that has not ended. A decision leaves the run queued at its
next step for the server's executor (an app kernel runs no step code). Errors go to the
status line, never as a traceback.

Runs are rows of the engine's own tables and send no record events, so the view follows
them by polling: with ``poll`` seconds (3 by default; 0 turns it off) a daemon thread reads
the current page and the selected run again (two indexed reads) and redraws only when
something changed, until :meth:`RunsView.close`. The Refresh button reads at once.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Int

from ...server.errors import AppbookError
from ...server.workflows import overview
from .status import StatusLine
from .views import SafeActions

if TYPE_CHECKING:
    from ...server.engine import Appbook

log = logging.getLogger(__name__)

COLUMNS = ("component", "workflow", "status", "started by", "started", "duration")
WIDTHS = ("16%", "18%", "12%", "16%", "22%", "12%")
STATUS_COLOURS = {
    "succeeded": "#1b5e20",
    "failed": "#b00020",
    "timed_out": "#b00020",
    "waiting": "#8a5300",
    "running": "#0d47a1",
    "queued": "#555",
    "cancelled": "#555",
}
ACTIONS = ("approve", "reject", "retry", "cancel")


class RunsView(SafeActions, widgets.VBox):  # type: ignore[misc]
    """Runs of every component (or of ``component``), newest first, with the selected run's
    steps and the actions that apply to it for ``app.actor``.

    The parts are public for pages and tests: ``status_filter`` and ``workflow_filter``
    (dropdowns), ``refresh_button``, ``row_buttons`` and ``row_cells`` (one per slot of the
    page), ``pager_buttons`` (previous, next), ``header``, ``timeline``, ``comment``,
    ``action_buttons`` (by action name) and ``status``.
    """

    selected_id = Int(None, allow_none=True, help="The id of the run shown below the table.")
    revision = Int(0, help="Goes up by one each time the view is redrawn.")

    def __init__(
        self,
        app: Appbook,
        *,
        component: str | None = None,
        page_size: int = 20,
        poll: float = 3.0,
        **kwargs: Any,
    ) -> None:
        if not 1 <= page_size <= 500:
            raise ValueError(f"page_size: expected 1 to 500 runs, got {page_size}")
        self.app, self.component, self.page_size = app, component, page_size
        self._lock = threading.RLock()
        self._stack: list[int | None] = [None]  # the `before` of each page up to this one
        self._next: int | None = None
        self._runs: list[dict[str, Any]] = []
        self._detail: dict[str, Any] | None = None
        self._seen: object = None
        self._found: list[dict[str, Any]] = []
        self._stopped = threading.Event()
        self._build()
        super().__init__(children=self._sections, **kwargs)
        self.add_class("appbook-runs")
        self.refresh()
        self._poller: threading.Thread | None = None
        if poll > 0:
            self._poller = threading.Thread(
                target=self._poll, args=(poll,), name="appbook-runs-poll", daemon=True
            )
            self._poller.start()

    # -- the public API ---------------------------------------------------------------
    @property
    def runs(self) -> list[dict[str, Any]]:
        """The runs of the current page, as :func:`overview.describe` shows them."""
        return [dict(r) for r in self._runs]

    @property
    def selected(self) -> dict[str, Any] | None:
        """The selected run with its ``steps`` and ``actions``, or None."""
        return None if self._detail is None else dict(self._detail)

    def refresh(self) -> bool:
        """Read the current page (and the selected run) again; True if the engine answered."""
        with self._lock:
            return self._load(self._stack)

    def next_page(self) -> bool:
        """Go to older runs; False if there are none."""
        with self._lock:
            return self._next is not None and self._load([*self._stack, self._next])

    def prev_page(self) -> bool:
        """Go to newer runs; False on the first page."""
        with self._lock:
            return len(self._stack) > 1 and self._load(self._stack[:-1])

    def select(self, run_id: int | None) -> dict[str, Any] | None:
        """Show run ``run_id`` below the table (None: show none); the run, or None."""
        with self._lock:
            self.selected_id = run_id
            self._detail = None if run_id is None else self._read_detail(run_id)
            self._seen = self._fingerprint(self._found, self._detail)
            self._render()
            return self.selected

    def approve(self) -> dict[str, Any]:
        """Approve what the selected run waits for, as ``app.actor``, with the comment."""
        return self._act("approve")

    def reject(self) -> dict[str, Any]:
        """Reject what the selected run waits for, as ``app.actor``, with the comment."""
        return self._act("reject")

    def retry(self) -> dict[str, Any]:
        """Queue the selected (failed) run again at the step it failed in."""
        return self._act("retry")

    def cancel(self) -> dict[str, Any]:
        """Cancel the selected run."""
        return self._act("cancel")

    def close(self) -> None:
        """Stop polling and close the view's widgets."""
        stopped, poller = getattr(self, "_stopped", None), getattr(self, "_poller", None)
        if stopped is not None:  # none if the configuration was refused
            stopped.set()
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=10)
        for widget in getattr(self, "_parts", ()):
            widget.close()
        super().close()

    # -- reading ----------------------------------------------------------------------
    def _filters(self) -> dict[str, Any]:
        chosen = self.workflow_filter.value
        component, _, workflow = chosen.partition("/") if chosen else (self.component, "", "")
        return {
            "component": component or None,
            "workflow": workflow or None,
            "status": self.status_filter.value or None,
        }

    def _load(self, stack: list[int | None], *, always: bool = True) -> bool:
        """Read the page after ``stack[-1]`` and the selected run; redraw (``always``, or
        when something changed). True if the engine answered."""
        try:
            found = self.app.runs.query(
                **self._filters(), before=stack[-1], limit=self.page_size + 1
            )
            detail = None if self.selected_id is None else self._read_detail(self.selected_id)
        except Exception as exc:
            self._failed("refresh", exc)
            return False
        self._found = found
        page = found[: self.page_size]
        self._stack, self._runs = list(stack), [overview.describe(r) for r in page]
        self._next = int(page[-1]["id"]) if len(found) > self.page_size else None
        self._detail = detail
        seen, self._seen = self._seen, self._fingerprint(found, detail)
        if always or seen != self._seen:
            self._render()
        return True

    def _read_detail(self, run_id: int) -> dict[str, Any]:
        run = self.app.runs.get(run_id)
        steps = self.app.runs.steps(run_id)
        shown = overview.describe(run, steps)
        shown["actions"] = overview.actions(self.app, run, steps, self.app.actor)
        return shown

    @staticmethod
    def _fingerprint(runs: list[dict[str, Any]], detail: dict[str, Any] | None) -> object:
        rows = tuple((r["id"], r["status"], r["updated_at"]) for r in runs)
        if detail is None:
            return rows
        steps = tuple((s["id"], s["status"]) for s in detail["steps"])
        return rows, detail["status"], detail["updated_at"], steps, tuple(detail["actions"])

    def poll_once(self) -> bool:
        """Read again and redraw if anything changed; True if it did (the poller's step)."""
        with self._lock:
            before = self._seen
            return self._load(self._stack, always=False) and self._seen != before

    def _poll(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            try:
                self.poll_once()
            except Exception:
                log.exception("polling runs failed; trying again")

    # -- acting -----------------------------------------------------------------------
    def _act(self, action: str) -> dict[str, Any]:
        with self._lock:
            detail = self._detail
            if detail is None:
                raise AppbookError("select a run first")
            run_id = int(detail["id"])
            runs = self.app.runs
            if action in ("approve", "reject"):
                comment = self.comment.value
                approve = action == "approve"
                runs.decide(run_id, self.app.actor, approve=approve, comment=comment, advance=False)
                self.comment.value = ""
            else:
                getattr(runs, action)(run_id)
            self.refresh()
            assert self._detail is not None
            self.status.show("ok", f"run {run_id}: {action} done, now {self._detail['status']}")
            return dict(self._detail)

    def _failed(self, what: str, exc: Exception) -> None:
        if isinstance(exc, AppbookError):
            self.status.show("error", exc.message)
            return
        # Viewers never see a traceback; the maker finds it in the kernel log.
        log.exception("the %s of the runs view failed", what)
        self.status.show(
            "error", f"The {what} failed ({type(exc).__name__}); the kernel log has the details."
        )

    # -- widgets ----------------------------------------------------------------------
    def _build(self) -> None:
        statuses = [("All statuses", ""), *((s.replace("_", " "), s) for s in overview.STATUSES)]
        self.status_filter = widgets.Dropdown(options=statuses, value="", description="Status")
        self.workflow_filter = widgets.Dropdown(
            options=self._workflow_options(), value="", description="Workflow"
        )
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self._safely("refresh", self._refresh_clicked))
        for dropdown in (self.status_filter, self.workflow_filter):
            dropdown.observe(lambda _: self._safely("filter", self._first_page), "value")
        toolbar = widgets.HBox([self.status_filter, self.workflow_filter, self.refresh_button])
        head = widgets.HTML(_cells_html([c.title() for c in COLUMNS], bold=True))
        self.row_cells: list[widgets.HTML] = []
        self.row_buttons: list[widgets.Button] = []
        rows: list[widgets.HBox] = []
        for i in range(self.page_size):
            button = widgets.Button(description="Open", layout=widgets.Layout(width="64px"))
            button.on_click(lambda _, i=i: self._safely("selection", lambda: self._open(i)))
            cells = widgets.HTML(layout=widgets.Layout(flex="1 1 auto"))
            rows.append(widgets.HBox([button, cells], layout=widgets.Layout(display="none")))
            self.row_buttons.append(button)
            self.row_cells.append(cells)
        self.pager_buttons = [
            widgets.Button(description="Newer", icon="angle-left"),
            widgets.Button(description="Older", icon="angle-right"),
        ]
        self.pager_buttons[0].on_click(lambda _: self._safely("paging", self.prev_page))
        self.pager_buttons[1].on_click(lambda _: self._safely("paging", self.next_page))
        self.header, self.timeline = widgets.HTML(), widgets.HTML()
        self.comment = widgets.Textarea(placeholder="Comment (kept with your decision)")
        self.action_buttons = {
            name: widgets.Button(description=name.title(), layout=widgets.Layout(display="none"))
            for name in ACTIONS
        }
        for name, button in self.action_buttons.items():
            button.on_click(lambda _, n=name: self._safely(n, getattr(self, n)))
        self.status = StatusLine()
        self._table = widgets.VBox([head, *rows])
        self._pager = widgets.HBox(self.pager_buttons)
        self._actions = widgets.HBox(list(self.action_buttons.values()))
        self._sections = [toolbar, self._table, self._pager, self.header, self.timeline,
                          self.comment, self._actions, self.status]  # fmt: skip
        self._parts = [*self._sections, *rows, head, *self.row_buttons, *self.row_cells,
                       *self.pager_buttons, *self.action_buttons.values()]  # fmt: skip

    def _workflow_options(self) -> list[tuple[str, str]]:
        found = [
            f"{w['component']}/{w['name']}"
            for w in overview.workflows(self.app)
            if self.component in (None, w["component"])
        ]
        return [("All workflows", ""), *((name, name) for name in found)]

    def _refresh_clicked(self) -> None:
        self.status.show("", "")
        self.refresh()

    def _first_page(self) -> None:
        with self._lock:
            self._load([None])

    def _open(self, index: int) -> None:
        self.select(int(self._runs[index]["id"]))

    def _render(self) -> None:
        for i, row in enumerate(self._table.children[1:]):
            if i < len(self._runs):
                self.row_cells[i].value = _run_html(self._runs[i], self.selected_id)
            row.layout.display = "" if i < len(self._runs) else "none"
        self.pager_buttons[0].disabled = len(self._stack) <= 1
        self.pager_buttons[1].disabled = self._next is None
        detail = self._detail
        self.header.value = "" if detail is None else _header_html(detail)
        self.timeline.value = "" if detail is None else _timeline_html(detail["steps"])
        can = set(detail["actions"]) if detail is not None else set()
        for name, button in self.action_buttons.items():
            button.layout.display = "" if name in can else "none"
        self.comment.layout.display = "" if "approve" in can else "none"
        self.revision += 1


def _cells_html(
    cells: list[str], *, bold: bool = False, colours: dict[int, str] | None = None
) -> str:
    parts = []
    for i, (text, width) in enumerate(zip(cells, WIDTHS, strict=True)):
        style = f"display:inline-block;width:{width};overflow:hidden;text-overflow:ellipsis"
        if bold:
            style += ";font-weight:600"
        if colours and i in colours:
            style += f";color:{colours[i]}"
        parts.append(f'<span style="{style}">{html.escape(text)}</span>')
    return f'<div class="appbook-runs-row" style="white-space:nowrap">{"".join(parts)}</div>'


def _run_html(run: dict[str, Any], selected: int | None) -> str:
    cells = [
        run["component"],
        run["workflow"],
        run["status"].replace("_", " "),
        run["created_by"],
        run["created_at"].strftime("%Y-%m-%d %H:%M:%S"),
        overview.format_duration(run["duration"]),
    ]
    row = _cells_html(cells, colours={2: STATUS_COLOURS.get(run["status"], "inherit")})
    return f"<b>{row}</b>" if run["id"] == selected else row


def _header_html(run: dict[str, Any]) -> str:
    colour = STATUS_COLOURS.get(run["status"], "inherit")
    lines = [
        f"<b>Run {run['id']}</b> · {html.escape(run['component'])}/"
        f"{html.escape(run['workflow'])} · "
        f'<span style="color:{colour}">{html.escape(run["status"].replace("_", " "))}</span>'
    ]
    if run["record_id"] is not None:
        lines.append(f"record #{run['record_id']}")
    wait = run["waiting_for"]
    if wait:
        who = wait.get("user") or f"a user with role {wait.get('role')}"
        lines.append(f"waiting in {html.escape(wait['step'])} for {html.escape(str(who))}")
    if run["error"]:
        lines.append(f'<span style="color:#b00020">{html.escape(run["error"])}</span>')
    return '<div class="appbook-runs-header">' + "<br>".join(lines) + "</div>"


def _timeline_html(steps: list[dict[str, Any]]) -> str:
    if not steps:
        return '<div class="appbook-runs-timeline"><i>no step has run yet</i></div>'
    rows = []
    for step in steps:
        colour = STATUS_COLOURS.get(step["status"], "inherit")
        rows.append(
            "<tr>"
            f"<td>{html.escape(step['step'])}</td>"
            f'<td style="color:{colour}">{html.escape(step["status"])}</td>'
            f"<td>{step['attempt']}</td>"
            f"<td>{overview.format_duration(step['duration'])}</td>"
            f"<td>{html.escape(step['error'])}</td>"
            "</tr>"
        )
    head = "<tr><th>step</th><th>status</th><th>attempt</th><th>duration</th><th>error</th></tr>"
    return f'<table class="appbook-runs-timeline">{head}{"".join(rows)}</table>'
