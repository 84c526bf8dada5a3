"""The app's log: what component scripts log, and the tracebacks of their failures.

Every record goes to two places: the server log (the kernel's original stderr, which the
server that started the kernel writes to its own log) and, in the app itself, a collapsible
*Log* panel that only makers see (:func:`is_maker`). Viewers of the app never see it: they
get a short message in the page's status line instead.
"""

from __future__ import annotations

import html
import logging
import os
import sys
from collections import deque

import ipywidgets as widgets

from ...server import access
from ...server.engine import Appbook

KEEP = 200  # entries the panel keeps (the server log keeps everything)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVEL_COLOURS = {"ERROR": "#b00020", "CRITICAL": "#b00020", "WARNING": "#8a5300"}


def roles_of(app: Appbook) -> tuple[str, ...]:
    """The roles of ``app``'s actor that count (:func:`appbook.server.access.viewer`: none
    for a user who is not registered or is disabled)."""
    return access.viewer(app.users, app.actor).roles


def is_maker(app: Appbook) -> bool:
    """Whether ``app``'s actor builds apps rather than only uses them: the server's owner
    (the OS user the server and its kernels run as; token holders act as them) or an
    enabled user holding the ``developer`` role (the same rule pages open by)."""
    return access.viewer(app.users, app.actor).is_maker


class ServerLogHandler(logging.Handler):
    """Writes records to the server log: the kernel's original stderr. In an ipykernel,
    ``sys.stderr`` is a stream to the browser whose ``fileno()`` is the original stderr, so
    writing to that descriptor reaches the server's log and never the page."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        """Write one formatted record (with its traceback) to the original stderr."""
        try:
            text = self.format(record) + "\n"
            try:
                fd = sys.stderr.fileno()
            except (AttributeError, OSError, ValueError):
                fd = 2
            os.write(fd, text.encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)


class AppLog(widgets.VBox):  # type: ignore[misc]
    """The collapsible *Log* panel of an app, for makers; also a logging handler target."""

    def __init__(self) -> None:
        self.entries: deque[tuple[str, str]] = deque(maxlen=KEEP)  # (level, text)
        self.toggle = widgets.Button(description="Log (0)", icon="list")
        self.toggle.on_click(lambda _: self._flip())
        self.body = widgets.HTML(layout=widgets.Layout(display="none"))
        self.body.add_class("appbook-log-body")
        super().__init__(children=[self.toggle, self.body], layout=widgets.Layout(display="none"))
        self.add_class("appbook-log")
        self.handler = _PanelHandler(self)

    @property
    def expanded(self) -> bool:
        """Whether the entries are shown."""
        return bool(self.body.layout.display != "none")

    def show_to(self, maker: bool) -> None:
        """Show the panel (collapsed) to makers, hide it from everyone else."""
        self.layout.display = "" if maker else "none"

    def add(self, level: str, text: str) -> None:
        """Append one entry and re-render."""
        self.entries.append((level, text))
        self.toggle.description = f"Log ({len(self.entries)})"
        rows = "".join(
            f'<pre style="margin:2px 0;white-space:pre-wrap;color:{LEVEL_COLOURS.get(lv, "")}">'
            f"{html.escape(tx)}</pre>"
            for lv, tx in self.entries
        )
        self.body.value = f'<div style="max-height:320px;overflow:auto">{rows}</div>'

    def _flip(self) -> None:
        self.body.layout.display = "none" if self.expanded else ""


class _PanelHandler(logging.Handler):
    def __init__(self, panel: AppLog) -> None:
        super().__init__()
        self.panel = panel
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.panel.add(record.levelname, self.format(record))
        except Exception:
            self.handleError(record)


def script_logger(component: str, log: AppLog, server: logging.Handler) -> logging.Logger:
    """A logger of ``component``'s script for one app session, writing to the app's panel and
    the server log. It is not registered with :mod:`logging` (each session has its own, so
    handlers never pile up) and does not propagate."""
    logger = logging.Logger(f"appbook.app.{component}", logging.INFO)
    logger.propagate = False
    logger.addHandler(log.handler)
    logger.addHandler(server)
    return logger
