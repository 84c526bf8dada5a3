"""Component scripts in apps: ``<component>.py``, published with the component, run in the
app's kernel.

Each app session (one :class:`~appbook.kernels.ui.page.AppView`) loads a fresh module per
component from the publication in force (``app.source(component, "<component>.py")``), on
first use; a component without a script simply has no hooks. A page calls its functions:

- ``on_load(context)`` when the page opens and whenever its form shows another record (a new
  one prepared, a record loaded or reloaded);
- ``on_change(context, field)`` when the user changes a field (values set by code or by
  actions do not call it);
- ``before_save(context)`` before a save; errors it adds refuse the save;
- ``after_save(context)`` after a save;
- any function named by a ``call: function_name`` action.

Every call is safe: an exception (a syntax error in the script included) shows the user a
short message in the page's status line and writes the traceback to the app's log (the
maker's *Log* panel and the server log); it never reaches ipywidgets' callbacks, so the
kernel and the page keep working.
"""

from __future__ import annotations

import itertools
import linecache
import logging
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...server.engine import Appbook
from ...server.errors import NotFound
from .applog import AppLog, ServerLogHandler, is_maker, script_logger

if TYPE_CHECKING:
    from .status import StatusLine

HOOKS = ("on_load", "on_change", "before_save", "after_save")
_sessions = itertools.count(1)


class Scripts:
    """The component scripts of one app session, their loggers and the app's log panel."""

    def __init__(self, app: Appbook) -> None:
        self.app = app
        self.log = AppLog()
        self._server = ServerLogHandler()
        self._session = next(_sessions)
        self._modules: dict[str, types.ModuleType | None] = {}
        self._loggers: dict[str, logging.Logger] = {}

    def logger(self, component: str) -> logging.Logger:
        """``component``'s script logger in this session (the app's panel + the server log)."""
        if component not in self._loggers:
            self._loggers[component] = script_logger(component, self.log, self._server)
        return self._loggers[component]

    def module(self, component: str, status: StatusLine | None = None) -> types.ModuleType | None:
        """``component``'s script module, loaded on first use; None when it has none, or when
        it failed to load (said once, in ``status``, and logged)."""
        if component not in self._modules:
            try:
                self._modules[component] = self._load(component)
            except (Exception, SystemExit) as exc:
                self._modules[component] = None
                self.failed(component, f"loading {component}.py", exc, status)
        return self._modules[component]

    def function(
        self, component: str, name: str, status: StatusLine | None = None
    ) -> Callable[..., Any] | None:
        """The script's function ``name``, or None."""
        found = getattr(self.module(component, status), name, None)
        return found if callable(found) else None

    def _load(self, component: str) -> types.ModuleType | None:
        filename = f"{component}.py"
        try:
            source = self.app.source(component, filename).decode("utf-8")
        except NotFound:
            return None
        name = f"appbook_app_script_{component}_{self._session}"
        module = types.ModuleType(name, f"The script of component {component!r}.")
        module.__file__ = filename
        # Tracebacks in the log show the script's lines, as published.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        sys.modules[name] = module  # dataclasses and pickling look a module up by name
        try:
            exec(compile(source, filename, "exec"), module.__dict__)
        except BaseException:
            del sys.modules[name]
            raise
        return module

    def call(
        self,
        component: str,
        function: Callable[..., Any],
        status: StatusLine,
        *args: Any,
    ) -> tuple[bool, Any]:
        """Call ``function(*args)``: (True, its result), or (False, None) after an exception,
        shown in ``status`` as a short message and logged with its traceback."""
        try:
            return True, function(*args)
        except (Exception, SystemExit) as exc:  # a script must never stop the page
            self.failed(component, getattr(function, "__name__", "script"), exc, status)
            return False, None

    def failed(
        self, component: str, where: str, exc: BaseException, status: StatusLine | None
    ) -> None:
        """Log ``exc`` with its traceback; tell the user briefly (makers where to look)."""
        self.logger(component).error(
            "%s.py: %s failed", component, where, exc_info=(type(exc), exc, exc.__traceback__)
        )
        if status is None:
            return
        maker = is_maker(self.app)
        self.log.show_to(maker)
        summary = f"{type(exc).__name__}: {exc}"
        summary = summary if len(summary) <= 160 else summary[:159] + "…"
        detail = f" ({summary}; the traceback is in the Log)" if maker else ""
        status.show("error", f"Something went wrong in this page ({where}){detail}.")

    def close(self) -> None:
        """Forget this session's modules."""
        for module in self._modules.values():
            if module is not None:
                sys.modules.pop(module.__name__, None)
        self._modules.clear()
