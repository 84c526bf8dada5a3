"""The Celery executor as the server runs it: dispatch due runs to ``appbook worker``.

``appbook serve`` with ``APPBOOK_WORKFLOW_EXECUTOR=celery`` runs no step itself: a
:class:`~.dispatch.Dispatcher` thread sends each due run's id to the Celery workers over
Redis, and sends it again when its message was lost. Before it starts, the same checks as a
worker's (Redis answers, the visibility timeout fits every step) refuse a setup that cannot
work.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..engine import Appbook
from .celery_app import AppbookCelery, CelerySettings, make_celery, preflight
from .dispatch import Dispatcher
from .executor import Executor

if TYPE_CHECKING:
    from ..config import EngineConfig

log = logging.getLogger(__name__)

__all__ = ["CeleryExecutor"]


class CeleryExecutor(Executor):
    """Dispatches due runs to Celery workers; ``processes`` is unused (workers are
    ``appbook worker`` processes, anywhere), ``poll`` is the dispatcher's interval."""

    def __init__(self, config: EngineConfig, **options: Any) -> None:
        super().__init__(config, **options)
        self.celery: AppbookCelery | None = None
        self.dispatcher: Dispatcher | None = None
        self._app: Appbook | None = None

    def start(self) -> None:
        """Check the setup (AppbookError saying why if it cannot work), then dispatch."""
        if self.dispatcher is not None:
            return
        settings = CelerySettings(lease=self.lease)
        celery_app = make_celery(self.config, settings)
        preflight(celery_app)
        self._app = Appbook(self.config, actor="appbook-dispatcher")
        self.celery = celery_app
        self.dispatcher = Dispatcher(
            self._app,
            celery_app.send_advance,
            interval=self.poll,
            redispatch_after=settings.redispatch_after,
        )
        self.dispatcher.start()
        log.info("Appbook Celery executor: dispatching runs to queue %s", settings.queue)

    def wake(self) -> None:
        """A run was queued: dispatch now."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop dispatching (runs under way go on in their workers)."""
        if self.dispatcher is not None:
            self.dispatcher.stop(timeout)
            self.dispatcher = None
        if self.celery is not None:
            self.celery.close()
            self.celery = None
        if self._app is not None:
            self._app.close()
            self._app = None
