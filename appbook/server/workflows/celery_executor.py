"""The Celery executor as the server runs it: dispatch due runs to ``appbook worker``.

``appbook serve`` with ``APPBOOK_WORKFLOW_EXECUTOR=celery`` runs no step itself: a
:class:`~.dispatch.Dispatcher` thread sends each due run's id to the Celery workers over
Redis, and sends it again when its message was lost. Before it starts, the same checks as a
worker's (Redis answers, the visibility timeout fits every step) refuse a setup that cannot
work; a step published later that does not fit is logged as an error.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..engine import Appbook
from ..errors import ExecutorMisconfigured
from .celery_app import AppbookCelery, CelerySettings, make_celery, preflight
from .dispatch import Dispatcher
from .executor import Executor
from .visibility import check_visibility

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
        self._checked = -1  # the publication the visibility timeout was last checked against

    def start(self) -> None:
        """Check the setup (AppbookError saying why if it cannot work), then dispatch."""
        if self.dispatcher is not None:
            return
        settings = CelerySettings(lease=self.lease)
        celery_app = make_celery(self.config, settings)
        preflight(celery_app)
        self._app = Appbook(self.config, actor="appbook-dispatcher")
        self._checked = self._app.registry.publication
        self.celery = celery_app
        self.dispatcher = Dispatcher(
            self._app,
            self._send,
            interval=self.poll,
            redispatch_after=settings.redispatch_after,
        )
        self.dispatcher.start()
        log.info("Appbook Celery executor: dispatching runs to queue %s", settings.queue)

    def _send(self, run_id: int) -> None:
        assert self.celery is not None and self._app is not None
        publication = self._app.registry.publication
        if publication != self._checked:
            # Workers already running cannot refuse a step published since: say so here.
            self._checked = publication
            settings = self.celery.settings
            try:
                check_visibility(
                    self._app, settings.visibility_timeout, settings.default_step_timeout
                )
            except ExecutorMisconfigured as exc:
                log.error("publication %s: %s", publication, exc.message)
        self.celery.send_advance(run_id)

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
