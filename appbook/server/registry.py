"""The published components in force, cached per process.

Every process (server, kernels, workers) reads definitions from the publication table, not
from files, so they all agree. The cache re-checks the publication number at most once per
``check_interval`` seconds, and at once when a caller names a component it does not know.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .db import read_transaction
from .definitions import ComponentDef, from_snapshot
from .errors import NotFound
from .systables import PUBLICATIONS
from .tables import build_metadata


@dataclass(frozen=True)
class Component:
    """A published component: its definition and its table."""

    definition: ComponentDef
    table: sa.Table

    @property
    def name(self) -> str:
        """The component's name."""
        return self.definition.name


class Registry:
    """Published components by name, refreshed when a new publication lands."""

    def __init__(self, engine: Engine, check_interval: float = 1.0) -> None:
        self.engine = engine
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._number = -1
        self._checked = 0.0
        self._components: dict[str, Component] = {}

    @property
    def publication(self) -> int:
        """Number of the publication in force (0 before the first)."""
        self.refresh()
        return max(self._number, 0)

    def get(self, name: str) -> Component:
        """The component called ``name``; raises NotFound naming the known ones."""
        self.refresh()
        found = self._components.get(name)
        if found is None:
            self.refresh(force=True)
            found = self._components.get(name)
        if found is None:
            known = ", ".join(sorted(self._components)) or "none published yet"
            raise NotFound(f"unknown component {name!r} (components: {known})")
        return found

    def cached(self, name: str, max_age: float | None = None) -> Component | None:
        """The component called ``name`` if the cache knows it and was checked less than
        ``max_age`` seconds ago (default: ``check_interval``), without any database work;
        None otherwise (use :meth:`get`). Servers call :meth:`refresh` in the background so
        that hot paths find the cache fresh."""
        limit = self.check_interval if max_age is None else max_age
        if time.monotonic() - self._checked >= limit:
            return None
        return self._components.get(name)

    def all(self) -> dict[str, Component]:
        """Every published component."""
        self.refresh()
        return dict(self._components)

    def refresh(self, force: bool = False) -> None:
        """Reload definitions if a newer publication exists."""
        now = time.monotonic()
        if not force and now - self._checked < self.check_interval:
            return
        with self._lock:
            with read_transaction(self.engine) as conn:
                number = conn.execute(sa.select(sa.func.max(PUBLICATIONS.c.number))).scalar()
                number = int(number or 0)
                snapshot = None
                if number != self._number:
                    snapshot = conn.execute(
                        sa.select(PUBLICATIONS.c.definitions).where(PUBLICATIONS.c.number == number)
                    ).scalar()
            if snapshot is not None or number == 0:
                self._load(from_snapshot(snapshot or {}))
            self._number, self._checked = number, now

    def _load(self, definitions: dict[str, ComponentDef]) -> None:
        metadata = build_metadata(definitions)
        self._components = {n: Component(d, metadata.tables[n]) for n, d in definitions.items()}
