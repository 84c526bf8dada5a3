"""``Appbook``: the engine's services over one data layer, as one object.

The server extension, kernels (through :func:`appbook.connect`), workers and the CLI each
build one and share nothing else: the database and the event bus are the meeting points.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from .config import EngineConfig
from .db import create_engine, dispose
from .events import EventBus, make_bus
from .handle import ComponentHandle, FilesHandle
from .records import RecordStore
from .registry import Registry
from .schema import ensure_schema

if TYPE_CHECKING:
    from .definitions import Loaded
    from .files import FileStore
    from .publish import PublishResult
    from .secrets import Secrets
    from .users import Users
    from .workflows import Runs


def default_actor() -> str:
    """The OS user, the actor of local writes when no user is given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


class Appbook:
    """The data layer: components, records, publications, events and files."""

    def __init__(self, config: EngineConfig | None = None, *, actor: str | None = None) -> None:
        self.config = config or EngineConfig()
        self.actor = actor or default_actor()
        self.engine: Engine = create_engine(self.config.database_url)
        ensure_schema(self.engine)
        self.registry = Registry(self.engine)
        self.bus: EventBus = make_bus(self.engine, self.config.redis_url)
        self.records = RecordStore(
            self.engine, self.registry, self.bus, files=lambda: self.file_store
        )

    def __repr__(self) -> str:
        return f"<Appbook {self.engine.url.render_as_string(hide_password=True)}>"

    def __getitem__(self, name: str) -> ComponentHandle:
        return ComponentHandle(self, name)

    def __enter__(self) -> Appbook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def as_user(self, actor: str) -> Appbook:
        """A view of this data layer acting as ``actor`` (shares connections and bus)."""
        clone = object.__new__(Appbook)
        clone.__dict__.update(self.__dict__)
        clone.actor = actor
        return clone

    def components(self) -> list[str]:
        """Names of the published components."""
        return sorted(self.registry.all())

    @cached_property
    def file_store(self) -> FileStore:
        """The file store (encrypted at rest), shared by every user of this engine."""
        from .files import FileStore, KeyRing

        keyring = KeyRing(Path(self.config.key_file))
        return FileStore(self.engine, self.config.files_url, keyring)

    @property
    def files(self) -> FilesHandle:
        """Files as this engine's actor: ``app.files.put(data, name=...)``."""
        return FilesHandle(self.file_store, self.actor)

    @property
    def runs(self) -> Runs:
        """Workflow runs, started as this engine's actor: ``app.runs.start(...)``."""
        from .workflows import Runs

        return Runs(self)

    @property
    def users(self) -> Users:
        """Users and their roles, written as this engine's actor: ``app.users.add(...)``."""
        from .users import Users

        return Users(self.engine, self.actor)

    @property
    def secrets(self) -> Secrets:
        """Secrets for outside services, encrypted at rest: ``app.secrets.set(name, value)``."""
        from .secrets import Secrets

        return Secrets(self.engine, lambda: self.file_store.keyring, self.actor)

    def publish(self, directory: str | Path, *, allow_destructive: bool = False) -> PublishResult:
        """Validate every ``*.component.yaml`` under ``directory`` and publish them together."""
        from .definitions import load_directory

        return self._publish(load_directory(Path(directory)), allow_destructive)

    def publish_texts(
        self, texts: Mapping[str, str], *, allow_destructive: bool = False
    ) -> PublishResult:
        """Publish definitions given as ``{file name: YAML (or JSON) text}``."""
        from .definitions import load_texts

        return self._publish(load_texts(texts), allow_destructive)

    def _publish(self, loaded: list[Loaded], allow_destructive: bool) -> PublishResult:
        from .publish import publish
        from .sources import collect

        definitions = {item.definition.name: item.definition for item in loaded}
        result = publish(
            self.engine,
            definitions,
            actor=self.actor,
            allow_destructive=allow_destructive,
            files=collect(loaded),
        )
        self.registry.refresh(force=True)
        return result

    def source(self, component: str, path: str) -> bytes:
        """A notebook or script published with ``component`` (NotFound if it was not)."""
        from .sources import read

        return read(self.engine, component, path)

    def publications(self) -> list[PublishResult]:
        """Every publication, newest first."""
        from .publish import history

        return history(self.engine)

    def rollback(self, number: int, *, allow_destructive: bool = False) -> PublishResult:
        """Return to publication ``number``'s definitions, keeping data columns."""
        from .publish import rollback

        result = rollback(
            self.engine, number, actor=self.actor, allow_destructive=allow_destructive
        )
        self.registry.refresh(force=True)
        return result

    def close(self) -> None:
        """Stop the event bus and release database connections."""
        self.bus.close()
        dispose(self.engine)
