"""Forms: create and edit one record through a set of field controls.

The form checks every control with the engine's own rules before saving, sends only the
fields that changed together with the version it loaded, and shows the engine's
``ValidationError`` under each control it names. When someone else saved first
(``Conflict``) it keeps what was typed and offers to reload. With ``live=True`` it follows
the record's events: an untouched form reloads, an edited one only says that the record
changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets
from traitlets import Bool, Int, Unicode

from ...server.engine import Appbook
from ...server.errors import AppbookError, Conflict, NotFound, ValidationError
from ...server.events import RecordEvent
from .base import FieldControl
from .live import LiveRefresh
from .status import StatusLine

_UNSEEN = object()  # a field the form never loaded: any value set for it is a change


class RecordForm(widgets.VBox):  # type: ignore[misc]
    """The state and actions of a record form; its children are the status line only —
    pages place the controls where their layout says."""

    record_id = Int(None, allow_none=True, help="The record shown (None for a new record).")
    version = Int(None, allow_none=True, help="The version loaded; sent back when saving.")
    dirty = Bool(False, help="Whether a control differs from the loaded record.")
    changed_elsewhere = Bool(False, help="The record changed in the database since it was loaded.")
    message = Unicode("", help="The last outcome, also shown in the status line.")

    def __init__(
        self,
        app: Appbook,
        component: str,
        controls: Mapping[str, FieldControl],
        *,
        live: bool = False,
    ) -> None:
        self.app, self.component = app, component
        self.controls = dict(controls)
        self.status = StatusLine()
        self.reload_button = widgets.Button(
            description="Reload", icon="refresh", layout=widgets.Layout(display="none")
        )
        self.reload_button.on_click(lambda _: self.reload())
        super().__init__(children=[widgets.HBox([self.status, self.reload_button])])
        self.add_class("appbook-form")
        self._loaded: dict[str, Any] = {}
        self._extra: dict[str, Any] = {}
        self.on_saved: list[Callable[[dict[str, Any]], None]] = []
        # Component scripts (see hooks.py): called when another record is shown, and asked
        # before a save (False refuses it, the reasons shown by the caller).
        self.on_loaded: list[Callable[[], None]] = []
        self.before_save: Callable[[], bool] | None = None
        self.filling = False  # the form itself is putting values into controls
        for control in self.controls.values():
            control.observe(self._on_edit, "value")
        self._watcher: LiveRefresh | None = None
        if live:
            self._watch()
        self.new()

    # -- loading ----------------------------------------------------------------------
    def new(self) -> None:
        """Start a new record: defaults in every control."""
        definition = self.app[self.component].definition
        self.record_id, self.version = None, None
        self._loaded, self._extra = {}, {}
        with self._filling():
            for name, control in self.controls.items():
                field = definition.fields.get(name)
                control.value = field.default if field is not None else None
                control.error = ""
        self._settle("")
        self._loaded_hooks()

    def load(self, record_id: int) -> bool:
        """Show record ``record_id``; False (and a message) if it does not exist."""
        try:
            record = self.app[self.component].get(record_id)
        except NotFound as exc:
            self.status.show("error", exc.message)
            return False
        self._show(record)
        self._loaded_hooks()
        return True

    def reload(self) -> None:
        """Discard edits and show the stored record again."""
        if self.record_id is None:
            self.new()
        else:
            self.load(self.record_id)

    def _show(self, record: Mapping[str, Any]) -> None:
        self.record_id, self.version = int(record["id"]), int(record["version"])
        self._loaded = {n: record.get(n) for n in self.controls}
        self._loaded.update({n: record.get(n) for n in self._extra})
        self._extra = {}
        with self._filling():
            for name, control in self.controls.items():
                control.value = record.get(name)
                control.error = ""
        self._settle("")

    def _loaded_hooks(self) -> None:
        for callback in list(self.on_loaded):
            callback()

    @contextmanager
    def _filling(self) -> Iterator[None]:
        self.filling = True
        try:
            yield
        finally:
            self.filling = False

    # -- saving -----------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """What the controls hold, in engine terms."""
        return {name: control.value for name, control in self.controls.items()}

    def current(self) -> dict[str, Any]:
        """What the next save starts from: the controls' values and those set (by an action
        or a script) for fields the page does not show."""
        return {**self.values(), **self._extra}

    def set_value(self, name: str, value: Any) -> None:
        """Put ``value`` into field ``name``: its control, or, for a field the page does not
        show, a value saved with the next save (a page action such as ``set: {archived:
        true}``)."""
        if name in self.controls:
            with self._filling():
                self.controls[name].value = value
        else:
            self._extra[name] = value

    def changes(self) -> dict[str, Any]:
        """Only the fields that differ from the loaded record (all of them when new)."""
        values = {**self.values(), **self._extra}
        if self.record_id is None:
            return {k: v for k, v in values.items() if v is not None}
        return {k: v for k, v in values.items() if self._loaded.get(k, _UNSEEN) != v}

    def save(self) -> dict[str, Any] | None:
        """Check, then create or update; returns the saved record or None (errors shown)."""
        checked = [control.check() for control in self.controls.values()]  # every error shows
        # The page's script is asked too, so its errors show beside the field rules' ones.
        refused = self.before_save is not None and not self.before_save()
        if not all(checked):
            self.status.show(
                "error", "Some values need attention (see the messages under the fields)."
            )
            return None
        if refused:
            return None  # the page's script refused, saying why
        handle = self.app[self.component]
        try:
            if self.record_id is None:
                record = handle.create(self.changes())
            else:
                changes = self.changes()
                if not changes:
                    self.status.show("info", "Nothing to save.")
                    return None
                record = handle.update(self.record_id, changes, version=self.version)
        except ValidationError as exc:
            self.show_errors(exc)
            return None
        except Conflict as exc:
            self._show_conflict(exc)
            return None
        except AppbookError as exc:
            self.status.show("error", exc.message)
            return None
        self._show(record)
        self.status.show("ok", "Saved.")
        for callback in self.on_saved:
            callback(record)
        return record

    def delete(self) -> bool:
        """Delete the shown record (with its version); False with a message if refused."""
        if self.record_id is None:
            self.status.show("info", "Nothing to delete: this record is not saved yet.")
            return False
        try:
            self.app[self.component].delete(self.record_id, version=self.version)
        except AppbookError as exc:
            self.status.show("error", exc.message)
            return False
        self.new()
        self.status.show("ok", "Deleted.")
        return True

    def show_errors(self, exc: ValidationError) -> None:
        """Put each field's messages under its control; the rest in the status line."""
        unplaced = []
        for name, messages in exc.errors.items():
            control = self.controls.get(name.split(".")[-1])
            if control is not None:
                control.error = "; ".join(messages)
            else:
                unplaced.append(f"{name}: {'; '.join(messages)}")
        text = "Not saved: " + (
            "; ".join(unplaced) if unplaced else "see the messages under the fields."
        )
        self.status.show("error", text)

    def _show_conflict(self, exc: Conflict) -> None:
        if exc.field is not None and exc.field in self.controls:
            self.controls[exc.field].error = under_field(exc.message, exc.field)
            self.status.show("error", f"Not saved: {exc.message}")
            return
        self.changed_elsewhere = True
        self.status.show(
            "warning",
            f"Not saved: {exc.message.rstrip('.')}. Your changes are kept; Reload to see theirs.",
        )
        self.reload_button.layout.display = ""

    # -- state ------------------------------------------------------------------------
    def _on_edit(self, change: dict[str, Any]) -> None:
        self.dirty = (
            any(self._loaded.get(n) != c.value for n, c in self.controls.items())
            if self.record_id
            else any(c.value is not None for c in self.controls.values())
        )

    def _settle(self, message: str) -> None:
        self.dirty = False
        self.changed_elsewhere = False
        self.reload_button.layout.display = "none"
        self.status.show("", message)

    # -- live updates -----------------------------------------------------------------
    def _watch(self) -> None:
        subscription = self.app.bus.subscribe(component=self.component)

        def changed(events: list[RecordEvent]) -> None:
            mine = [
                e for e in events if e.record_id == self.record_id and e.version != self.version
            ]
            if mine:
                self.record_changed(mine[-1].actor, mine[-1].op)

        self._watcher = LiveRefresh(subscription, changed)

    def record_changed(self, actor: str, op: str) -> None:
        """The shown record changed elsewhere: reload if untouched, else say so."""
        if op == "delete":
            self.changed_elsewhere = True
            self.status.show("warning", f"{actor} deleted this record.")
        elif self.dirty:
            self.changed_elsewhere = True
            self.status.show(
                "warning",
                f"{actor} changed this record. Your edits are kept; Reload to see theirs.",
            )
            self.reload_button.layout.display = ""
        else:
            self.reload()
            self.status.show("info", f"Updated: {actor} changed this record.")

    def close(self) -> None:
        """Stop following events and close the widgets."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        super().close()


def under_field(message: str, field: str) -> str:
    """``message`` as it reads under ``field``'s control: without the ``component.field: ``
    that names the field elsewhere (``cars.vin: this value is already used …``)."""
    head, sep, rest = message.partition(": ")
    return rest if sep and head.rsplit(".", 1)[-1] == field else message
