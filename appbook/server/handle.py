"""The Python face of one component: ``app["invoices"].create(...)`` and friends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from .definitions import ComponentDef

if TYPE_CHECKING:
    import pandas as pd

    from .bulk import ImportResult
    from .dataflows import DataflowResult
    from .engine import Appbook
    from .files import FileInfo, FileStore


class QueryResult(list[dict[str, Any]]):
    """A page of records (a list of dicts) with ``next_cursor``, ``total`` and ``to_pandas()``."""

    def __init__(
        self,
        items: Iterable[dict[str, Any]],
        next_cursor: str | None,
        total: int | None,
        fields: Sequence[str],
    ) -> None:
        super().__init__(items)
        self.next_cursor = next_cursor
        self.total = total
        self.fields = list(fields)

    def to_pandas(self) -> pd.DataFrame:
        """The page as a DataFrame indexed by ``id`` (columns in field order)."""
        import pandas as pd

        return pd.DataFrame(list(self), columns=self.fields).set_index("id")


class ComponentHandle:
    """Record operations on one component, acting as the handle's user."""

    def __init__(self, app: Appbook, name: str) -> None:
        self.app, self.name = app, name
        app.records.registry.get(name)  # fail fast on unknown components

    def __repr__(self) -> str:
        return f"<component {self.name!r} of {self.app!r}>"

    @property
    def definition(self) -> ComponentDef:
        """The published definition."""
        return self.app.records.registry.get(self.name).definition

    def create(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a record (raises ValidationError, Conflict)."""
        return self.app.records.create(self.name, values, actor=self.app.actor)

    def get(self, record_id: int) -> dict[str, Any]:
        """A record by id (raises NotFound)."""
        return self.app.records.get(self.name, record_id)

    def update(
        self, record_id: int, values: Mapping[str, Any], *, version: int | None = None
    ) -> dict[str, Any]:
        """Change fields of a record; a stale ``version`` raises Conflict."""
        return self.app.records.update(
            self.name, record_id, values, actor=self.app.actor, version=version
        )

    def delete(self, record_id: int, *, version: int | None = None) -> None:
        """Delete a record (raises NotFound, Conflict)."""
        self.app.records.delete(self.name, record_id, actor=self.app.actor, version=version)

    def query(
        self,
        where: Mapping[str, Any] | None = None,
        *,
        order_by: str | Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        cursor: str | None = None,
        fields: Sequence[str] | None = None,
        total: bool = False,
    ) -> QueryResult:
        """Matching records, one page (see :meth:`RecordStore.query`)."""
        page = self.app.records.query(
            self.name,
            where=where,
            order_by=order_by,
            limit=limit,
            offset=offset,
            cursor=cursor,
            fields=fields,
            total=total,
        )
        return QueryResult(page.items, page.next_cursor, page.total, page.fields)

    def count(self, where: Mapping[str, Any] | None = None) -> int:
        """How many records match."""
        return self.app.records.count(self.name, where=where)

    def aggregate(
        self,
        group_by: Sequence[str] = (),
        metrics: Mapping[str, str] | None = None,
        *,
        where: Mapping[str, Any] | None = None,
        order_by: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Grouped metrics: ``aggregate(["status"], {"n": "count", "total": "sum(amount)"})``."""
        return self.app.records.aggregate(
            self.name, group_by=group_by, metrics=metrics, where=where, order_by=order_by
        )

    def run_workflow(
        self,
        workflow: str,
        *,
        record_id: int | None = None,
        inputs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start ``workflow`` (on record ``record_id``, with ``inputs``) and run it here
        until it ends or waits; the run (see :class:`appbook.server.workflows.Runs`)."""
        from .workflows import INLINE

        runs = self.app.runs
        run = runs.start(self.name, workflow, record_id=record_id, inputs=inputs, hold=INLINE)
        return runs.advance(int(run["id"]), owner=INLINE)

    def runs(
        self,
        workflow: str | None = None,
        *,
        status: str | list[str] | None = None,
        record_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """This component's workflow runs, newest first (``app.runs.query`` for more)."""
        return self.app.runs.query(
            component=self.name, workflow=workflow, status=status, record_id=record_id, limit=limit
        )

    def run_dataflow(
        self,
        name: str,
        inputs: dict[str, Any] | None = None,
        *,
        record: int | dict[str, Any] | None = None,
    ) -> DataflowResult:
        """Run dataflow ``name`` here, its writes in one transaction, and log the run; the
        result's ``value`` is what its ``respond`` step gave, ``actions`` its form actions.
        A failing step raises its error naming stage, step and item, and nothing is written."""
        from .dataflows import run

        return run(self.app, self.name, name, inputs=inputs, record=record)

    def attach(
        self,
        record_id: int,
        field: str,
        data: bytes | BinaryIO | Iterable[bytes],
        *,
        name: str,
        media_type: str | None = None,
        version: int | None = None,
    ) -> dict[str, Any]:
        """Store a file under the field's ``accept``/``max_size`` and set it on the record.

        If the record update fails (stale version, say), the stored file is removed again.
        """
        from .errors import ValidationError

        spec = self.definition.fields.get(field)
        if spec is None or spec.type != "file":
            raise ValidationError({field: [f"not a file field of {self.name}"]})
        info = self.app.files.put(
            data,
            name=name,
            folder=self.name,
            media_type=media_type,
            accept=spec.accept,
            max_size=spec.max_size,
        )
        try:
            return self.update(record_id, {field: info.id}, version=version)
        except BaseException:
            self.app.files.delete(info.id)
            raise

    def import_rows(
        self, source: Iterable[Mapping[str, Any]] | str | BinaryIO, *, format: str | None = None
    ) -> ImportResult:
        """Insert many rows, all or none (CSV/JSON-lines file or path, or dicts)."""
        from .bulk import import_rows

        return import_rows(self.app, self.name, source, format=format)


class FilesHandle:
    """The file store, acting as one user: what ``app.files`` returns."""

    def __init__(self, store: FileStore, actor: str) -> None:
        self.store, self.actor = store, actor

    def put(
        self,
        data: bytes | BinaryIO | Iterable[bytes],
        *,
        name: str,
        folder: str = "",
        media_type: str | None = None,
        accept: Sequence[str] | None = None,
        max_size: int | str | None = None,
    ) -> FileInfo:
        """Store a file (streamed, encrypted); returns its metadata with its ``id``."""
        return self.store.put(
            data,
            name=name,
            folder=folder,
            media_type=media_type,
            actor=self.actor,
            accept=accept,
            max_size=max_size,
        )

    def get(self, file_id: str) -> bytes:
        """The whole content of a file."""
        return self.store.get(file_id)

    def open(self, file_id: str) -> Iterable[bytes]:
        """The content of a file as decrypted chunks."""
        return self.store.open(file_id)

    def stat(self, file_id: str) -> FileInfo:
        """Name, size, media type, sha256, created_by and created_at of a file."""
        return self.store.stat(file_id)

    def list(self, folder: str = "") -> list[FileInfo]:
        """Files in ``folder``, oldest first."""
        return self.store.list(folder)

    def delete(self, file_id: str) -> None:
        """Remove a file."""
        self.store.delete(file_id)
