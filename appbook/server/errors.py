"""The one error tree of Appbook.

Every failure the engine reports to a caller is an :class:`AppbookError`::

    AppbookError
    ├── DefinitionError        a component file is invalid (file, line, path, reason)
    ├── PublishError           a publication was refused or failed; nothing changed
    │   └── DestructiveChange  it would lose data; pass allow_destructive to go on
    ├── QueryError             a malformed where / order_by / cursor / aggregate
    ├── ValidationError        record values break field rules (.errors: field -> messages)
    ├── NotFound               no such component, record, publication or file
    ├── Conflict               unique value taken, stale version, or still referenced
    ├── Forbidden              the actor may not do this
    ├── PayloadTooLarge        a file or body over its size limit
    ├── KeyFileError           the at-rest key file is missing, corrupt or lacks a key
    ├── CorruptFile            stored file bytes failed their integrity check
    ├── ServiceUnavailable     the database (or Redis) cannot be reached
    ├── ExecutorMisconfigured  executor settings cannot work with what is published
    └── OutboundError          a call to an outside service (HTTP, SMTP) failed
        └── OutboundRefused    the guard refused its destination (host, address)

Each class carries a stable ``code``; the server extension maps classes to HTTP statuses in
exactly one place. Messages say what is wrong and where, never include passwords.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class AppbookError(Exception):
    """Base of every error Appbook raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of the error: ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a definition file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DefinitionError(AppbookError):
    """One or more component definitions are invalid; ``problems`` lists every one."""

    code = "invalid_definition"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in component definitions:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["problems"] = [
            {"file": p.file, "line": p.line, "path": p.path, "message": p.message}
            for p in self.problems
        ]
        return data


class PublishError(AppbookError):
    """A publication could not be applied; the previous publication stays in force."""

    code = "publish_failed"


class DestructiveChange(PublishError):
    """The publication would drop or narrow data; ``changes`` explains each."""

    code = "destructive_change"

    def __init__(self, changes: Sequence[str]) -> None:
        self.changes = list(changes)
        lines = "\n".join(f"  - {c}" for c in self.changes)
        super().__init__(
            "publication refused, it would lose data:\n"
            f"{lines}\n"
            "Nothing was changed. Re-run with --allow-destructive (allow_destructive=True) "
            "to apply it anyway."
        )


class QueryError(AppbookError):
    """A query is malformed: unknown field or operator, wrong value type, bad cursor."""

    code = "bad_query"


class ValidationError(AppbookError):
    """Record values break field rules. ``errors`` maps each field to its messages."""

    code = "validation_failed"

    def __init__(self, errors: Mapping[str, Sequence[str]], *, where: str = "") -> None:
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in errors.items()}
        shown = list(self.errors.items())[:10]
        detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in shown)
        if len(self.errors) > len(shown):
            detail += f"; and {len(self.errors) - len(shown)} more"
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}invalid values ({detail})")

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["fields"] = self.errors
        return data


class NotFound(AppbookError):
    """No such component, record, publication or file."""

    code = "not_found"


class Conflict(AppbookError):
    """The write conflicts with stored data: a unique value, a stale version, a reference."""

    code = "conflict"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        if self.field is not None:
            data["fields"] = {self.field: [self.message]}
        return data


class Forbidden(AppbookError):
    """The acting user may not do this."""

    code = "forbidden"


class PayloadTooLarge(AppbookError):
    """A file or request body is over its size limit."""

    code = "too_large"


class KeyFileError(AppbookError):
    """The key file is missing, unreadable or corrupt, or lacks a key that is needed."""

    code = "key_file"


class CorruptFile(AppbookError):
    """Stored bytes failed their integrity check: altered, truncated or misplaced."""

    code = "corrupt_file"


class ServiceUnavailable(AppbookError):
    """A dependency (the database, Redis) cannot be reached."""

    code = "unavailable"


class ExecutorMisconfigured(AppbookError):
    """The workflow executor's settings cannot work with what is published (e.g. Celery's
    visibility timeout under a step's timeout); the message names the setting to change."""

    code = "executor_misconfigured"


class OutboundError(AppbookError):
    """A call to an outside service (a webhook, an HTTP API, an SMTP server) failed; the
    message names the destination (without credentials) and why."""

    code = "outbound_failed"


class OutboundRefused(OutboundError):
    """The outbound guard refused a destination: a host not allowed, or an address that is
    loopback, link-local, private, unspecified or multicast (checked after DNS)."""

    code = "outbound_refused"


class DataflowFailed(AppbookError):
    """A dataflow step failed for a reason of its own (a script raised, returned something
    that is not items, a dataflow called itself too deep); the message names the dataflow,
    stage, step and item. Failures of the engine keep their own class (ValidationError,
    NotFound, …) with the same naming prefix."""

    code = "dataflow_failed"
