"""Fixtures shared by the engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appbook.server.config import EngineConfig
from appbook.server.workflows.executor import LocalExecutor


@pytest.fixture
def executor(config: EngineConfig) -> Iterator[LocalExecutor]:
    """The local executor on the test's database: two worker processes, a short lease (a
    killed worker's run is taken over within seconds), a quick poll."""
    running = LocalExecutor(config, processes=2, lease=3, poll=0.1)
    running.start()
    try:
        yield running
    finally:
        running.stop()
