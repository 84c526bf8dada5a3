"""Behaviour shared by the record views (grid, list, tree): keyset paging and selection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ...server.errors import NotFound


class KeysetPaging:
    """``refresh``, ``next_page`` and ``prev_page`` over a stack of keyset cursors.

    The view keeps ``_stack`` (the cursors of the pages up to the current one, ``None`` for
    the first), ``_next`` (the next page's cursor, or None), ``_records`` (the current page)
    and a ``_lock``, and implements ``_load(stack, count)``: read the page after
    ``stack[-1]``, counting the total when asked; True if the engine answered.
    """

    _stack: list[str | None]
    _next: str | None
    _records: list[Any]
    _lock: threading.RLock

    def _load(self, stack: list[str | None], *, count: bool) -> bool:
        raise NotImplementedError

    def refresh(self) -> bool:
        """Reload the current page and recount; True if the engine answered."""
        with self._lock:
            ok = self._load(self._stack, count=True)
            while ok and not self._records and len(self._stack) > 1:
                ok = self._load(self._stack[:-1], count=False)  # the page emptied: go back
            return ok

    def next_page(self) -> bool:
        """Go to the next page; False if there is none (or the engine failed)."""
        with self._lock:
            return self._next is not None and self._load([*self._stack, self._next], count=False)

    def prev_page(self) -> bool:
        """Go to the previous page; False on the first page."""
        with self._lock:
            return len(self._stack) > 1 and self._load(self._stack[:-1], count=False)


class SafeActions:
    """``_safely(what, action)``: run a button's action; a failure goes to the view's status
    line (its ``_failed(what, exc)``) and the kernel log, never to the viewer as a traceback."""

    def _failed(self, what: str, exc: Exception) -> None:
        raise NotImplementedError

    def _safely(self, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:
            self._failed(what, exc)


def open_record(view: Any, record_id: int) -> dict[str, Any] | None:
    """Read the whole record ``record_id`` and hand it to ``view.on_select``.

    If it no longer exists, the view reloads and says so in its status line, and None is
    returned. The view has ``handle``, ``status``, ``selected_id``, ``on_select`` and
    ``refresh()``.
    """
    try:
        record: dict[str, Any] = view.handle.get(record_id)
    except NotFound as exc:
        view.refresh()
        view.status.show("error", exc.message)
        return None
    view.selected_id = record_id
    if view.on_select is not None:
        view.on_select(record)
    return record
