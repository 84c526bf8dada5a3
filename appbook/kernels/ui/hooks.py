"""One page's side of component scripts: when its hooks run, the errors scripts put under
its fields, and the commands that wait until a function returns.

A page holds one :class:`PageHooks`; the page's form calls :meth:`PageHooks.before_save`
and, through ``on_saved`` and ``on_loaded``, :meth:`after_save` and :meth:`loaded`; field
controls report user edits to :meth:`changed`; the ``call`` action runs :meth:`call`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...server.errors import AppbookError, ValidationError
from .context import Context

if TYPE_CHECKING:
    from .page import PageView


class PageHooks:
    """The script hooks of one page."""

    def __init__(self, page: PageView) -> None:
        self.page = page
        self.errors: dict[str, list[str]] = {}  # added by scripts, until cleared
        self.active = False  # started (shown) and not closed
        self._later: list[Callable[[], Any]] | None = None

    # -- running functions ------------------------------------------------------------
    def run(
        self, function: Callable[..., Any], *args: Any, row: Mapping[str, Any] | None = None
    ) -> tuple[bool, Any]:
        """Call ``function(context, *args)`` safely, then carry out the commands it gave."""
        outer, self._later = self._later, []
        page = self.page
        ok, result = page.shell.scripts.call(
            page.component, function, page.status, Context(page, row), *args
        )
        later, self._later = self._later, outer
        for step in later if ok else []:
            try:
                step()
            except AppbookError as exc:
                page.status.show("error", f"That did not work: {exc.message}")
                break
            except Exception as exc:
                page.shell.scripts.failed(page.component, "a command", exc, page.status)
                break
        return ok, result

    def later(self, step: Callable[[], Any]) -> None:
        """Carry out ``step`` when the running function returns (at once outside one)."""
        if self._later is None:
            step()
        else:
            self._later.append(step)

    def hook(self, name: str, *args: Any) -> tuple[bool, Any]:
        """Run the script's ``name`` hook if it defines one: (ok, result)."""
        page = self.page
        function = page.shell.scripts.function(page.component, name, page.status)
        return (True, None) if function is None else self.run(function, *args)

    # -- when hooks run ---------------------------------------------------------------
    def start(self) -> None:
        """The page is shown: ``on_load`` now and whenever its form shows another record."""
        self.active = True
        if self.page.form is not None:
            self.page.form.on_loaded.append(self.loaded)
        self.loaded()

    def loaded(self) -> None:
        """A record (new, loaded, reloaded) is in the form."""
        self.errors.clear()
        self.hook("on_load")

    def changed(self, change: dict[str, Any]) -> None:
        """A bound control's value changed: ``on_change`` when the user changed it."""
        if not self.active:
            return  # the page is being built or is closed
        control, form = change["owner"], self.page.form
        field = control.field_name
        if form is None or form.filling:
            return  # set by code (a record shown, set_value, a set action): not an edit
        self.errors.pop(field, None)  # the user's new value stands on its own
        # The user's value is published; what the script sets now comes from code, and the
        # control shows values from code only when its own input is not the source.
        control._from_input = False
        try:
            self.hook("on_change", field)
        finally:
            control._from_input = True

    def before_save(self) -> bool:
        """The form is about to save: ``before_save``; False (errors shown) refuses it."""
        ok, _ = self.hook("before_save")
        if not ok:
            return False
        if self.errors:
            self._show()
            assert self.page.form is not None
            self.page.form.show_errors(ValidationError(self.errors))
            return False
        return True

    def after_save(self, record: Mapping[str, Any]) -> None:
        """The form saved ``record``."""
        self.hook("after_save")

    def call(self, name: str, row: Mapping[str, Any]) -> bool:
        """The ``call: name`` action; False (stopping an action list) when the function is
        missing, raised or returned False."""
        page = self.page
        function = page.shell.scripts.function(page.component, name, page.status)
        if function is None:
            if page.status.kind != "error":  # not already said: the script did not load
                page.status.show("error", f"This page's script has no function {name!r}.")
            return False
        ok, result = self.run(function, row=row)
        return ok and result is not False

    # -- errors under fields ----------------------------------------------------------
    def add_error(self, field: str, message: str) -> None:
        """Put ``message`` under ``field`` until cleared."""
        self.errors.setdefault(field, []).append(str(message))
        self._show()

    def clear_error(self, field: str) -> None:
        """Take the scripts' messages from under ``field``."""
        if self.errors.pop(field, None) is not None:
            control = self.page.controls.get(field)
            if control is not None:
                control.error = ""

    def _show(self) -> None:
        for field, messages in self.errors.items():
            control = self.page.controls.get(field)
            if control is not None:
                control.error = "; ".join(messages)

    def close(self) -> None:
        """The page closed: no more hooks."""
        self.active = False
