"""Dataflows: stages of steps that read, transform and write records in one transaction.

``app["cars"].run_dataflow("add_car", inputs=..., record=...)`` runs one here and returns
a :class:`DataflowResult` (the ``respond`` value and the form actions). Definitions are in
:mod:`appbook.server.definitions.dataflows`; steps run in :mod:`.runner`, one module per
family of kinds; each run is logged (:mod:`.log`); REST runs with scripts go to a child
process with limits (:mod:`.isolate`).
"""

from __future__ import annotations

from ..errors import DataflowFailed
from .runner import DataflowResult, definition_of, run

__all__ = ["DataflowFailed", "DataflowResult", "definition_of", "run"]
