"""RecordStore.transaction(): many writes, one transaction, events after the commit."""

from __future__ import annotations

import pytest

from appbook.server.engine import Appbook
from appbook.server.errors import ValidationError

NOTES = """\
name: notes
fields:
  title: {type: string, required: true}
  n: {type: integer, min: 0}
"""


@pytest.fixture
def notes(app: Appbook) -> Appbook:
    app.publish_texts({"notes.component.yaml": NOTES})
    return app


def test_writes_commit_together_and_publish_after_the_commit(notes: Appbook) -> None:
    with notes.bus.subscribe("notes") as events:
        with notes.records.transaction("ada") as writer:
            a = writer.create("notes", {"title": "a", "n": 1})
            writer.update("notes", a["id"], {"n": 2})
            assert writer.get("notes", a["id"])["n"] == 2  # the transaction sees its writes
            b = writer.create("notes", {"title": "b"})
            writer.delete("notes", b["id"])
            assert events.get(timeout=0.2) is None  # nothing published before the commit
        seen = [events.get(timeout=5) for _ in range(4)]
    assert [(e.op, e.actor) for e in seen if e] == [
        ("create", "ada"),
        ("update", "ada"),
        ("create", "ada"),
        ("delete", "ada"),
    ]
    assert notes["notes"].get(a["id"])["version"] == 2 and notes["notes"].count() == 1


def test_a_failure_writes_nothing(notes: Appbook) -> None:
    def two_writes() -> None:
        with notes.records.transaction("ada") as writer:
            writer.create("notes", {"title": "kept?"})
            writer.create("notes", {"n": -1})

    with pytest.raises(ValidationError):
        two_writes()
    assert notes["notes"].count() == 0


def test_update_many_batches_and_names_the_change(notes: Appbook) -> None:
    ids = [notes["notes"].create({"title": str(i), "n": i})["id"] for i in range(5)]
    with notes.records.transaction("ada") as writer:
        written = writer.update_many("notes", [(i, {"n": 10}) for i in ids])
    assert {r["n"] for r in written} == {10} and {r["version"] for r in written} == {2}
    changes = [(ids[0], {"n": 3}), (ids[1], {"n": -3})]
    with notes.records.transaction("ada") as writer, pytest.raises(ValidationError) as info:
        writer.update_many("notes", changes)
    assert list(info.value.errors) == ["change 2.n"]
    assert notes["notes"].get(ids[0])["n"] == 10
