"""One record write as the event bus carries it: :class:`RecordEvent`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

OPERATIONS = frozenset({"create", "update", "delete"})


@dataclass(frozen=True)
class RecordEvent:
    """A committed write of one record, as stored in the outbox (``appbook_events``).

    ``seq`` orders every event of a database; ``at`` is timezone-aware UTC.
    """

    seq: int
    component: str
    record_id: int
    op: str
    changed: tuple[str, ...]
    version: int
    actor: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (``changed`` as a list, ``at`` as an ISO 8601 string)."""
        return {
            "seq": self.seq,
            "component": self.component,
            "record_id": self.record_id,
            "op": self.op,
            "changed": list(self.changed),
            "version": self.version,
            "actor": self.actor,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordEvent:
        """The event :meth:`to_dict` produced; raises ``KeyError``/``ValueError`` if malformed."""
        return cls(
            seq=int(data["seq"]),
            component=str(data["component"]),
            record_id=int(data["record_id"]),
            op=str(data["op"]),
            changed=tuple(str(name) for name in data["changed"]),
            version=int(data["version"]),
            actor=str(data["actor"]),
            at=as_utc(datetime.fromisoformat(str(data["at"]))),
        )

    @classmethod
    def from_row(cls, row: Any) -> RecordEvent:
        """The event of one row selected from ``appbook_events`` (a SQLAlchemy ``Row``)."""
        m = row._mapping
        return cls(
            seq=int(m["seq"]),
            component=m["component"],
            record_id=int(m["record_id"]),
            op=m["op"],
            changed=tuple(m["changed"] or ()),
            version=int(m["version"]),
            actor=m["actor"],
            at=as_utc(m["at"]),
        )


def as_utc(value: datetime) -> datetime:
    """``value`` as aware UTC; a naive value is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
