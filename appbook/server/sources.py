"""Notebooks and scripts published with component definitions.

Workflow notebook steps and component scripts (``<component>.py``) live beside the
definition files; a publication from a folder carries them into the database, so a worker
on another machine runs exactly what was published, never a file edited since. Contents are
stored once by SHA-256 (``appbook_sources``); each publication maps ``component -> {path:
sha256}``, and that map is part of the publication's content hash (a changed notebook is a
new publication).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import NotFound
from .systables import PUBLICATIONS, SOURCES, utcnow

if TYPE_CHECKING:
    from .definitions import Loaded

Files = Mapping[str, Mapping[str, bytes]]  # component -> path -> content


def collect(loaded: list[Loaded]) -> dict[str, dict[str, bytes]]:
    """The notebooks each component's workflows name and its ``<name>.py`` script, read
    from beside its definition file (nothing for definitions given as texts)."""
    found: dict[str, dict[str, bytes]] = {}
    for item in loaded:
        folder = item.source.folder
        if folder is None:
            continue
        files: dict[str, bytes] = {}
        for workflow in (item.definition.workflows or {}).values():
            for _, step in workflow.steps():
                if step.notebook is not None:  # checked by check_workflows: it is one
                    files[step.notebook] = (folder / step.notebook).read_bytes()
        script = folder / f"{item.definition.name}.py"
        if script.is_file():
            files[script.name] = script.read_bytes()
        if files:
            found[item.definition.name] = files
    return found


def digests(files: Files) -> dict[str, dict[str, str]]:
    """``component -> {path: sha256}`` of ``files``."""
    return {
        component: {path: hashlib.sha256(data).hexdigest() for path, data in sorted(paths.items())}
        for component, paths in sorted(files.items())
        if paths
    }


def store(conn: Connection, files: Files) -> dict[str, dict[str, str]]:
    """Store contents not stored yet; the publication's map of them."""
    mapping = digests(files)
    for component, paths in files.items():
        for path, data in paths.items():
            sha = mapping[component][path]
            exists = conn.execute(sa.select(SOURCES.c.sha256).where(SOURCES.c.sha256 == sha))
            if exists.first() is None:
                conn.execute(
                    SOURCES.insert().values(
                        sha256=sha, size=len(data), content=data, created_at=utcnow()
                    )
                )
    return mapping


def read(engine: Engine, component: str, path: str) -> bytes:
    """The content of ``path`` as published with ``component`` in the publication in force
    (NotFound, saying how to fix it, when it was not published)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(PUBLICATIONS.c.sources).order_by(PUBLICATIONS.c.number.desc()).limit(1)
        ).first()
        mapping: dict[str, Any] = (row.sources if row is not None else None) or {}
        sha = mapping.get(component, {}).get(path)
        content = None
        if sha is not None:
            content = conn.execute(
                sa.select(SOURCES.c.content).where(SOURCES.c.sha256 == sha)
            ).scalar()
    if content is None:
        raise NotFound(
            f"{path!r} was not published with component {component!r}: publish the folder "
            f"that holds it (appbook publish DIR)"
        )
    return bytes(content)
