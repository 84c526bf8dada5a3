"""Records on SQLite and PostgreSQL: every field type, validation, concurrency, references."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from appbook.server.engine import Appbook
from appbook.server.errors import Conflict, NotFound, ValidationError


def supplier(app: Appbook, name: str = "Acme") -> dict[str, Any]:
    return app["suppliers"].create({"name": name, "email": "a@acme.example"})


def test_create_and_get_every_field_type(published: Appbook) -> None:
    s = supplier(published)
    values = {
        "code": "AB-1",
        "notes": "long text " * 20,
        "qty": 3,
        "price": 9.75,
        "active": False,
        "day": "2026-11-25",
        "at_time": "13:45:00",
        "due": "2026-12-01T10:00:00+02:00",
        "status": 1,
        "colour": "green",
        "supplier": s["id"],
        "tags": ["a", "b"],
        "buyers": [s["id"]],
        "link": "https://example.org/x",
        "contact": "someone@example.org",
        "extra": {"nested": [1, 2, {"x": None}]},
        "preview": "virtual fields are accepted and not stored",
    }
    rec = published["items"].create(values)
    got = published["items"].get(rec["id"])
    assert got == rec
    assert got["day"] == date(2026, 11, 25)
    assert got["at_time"] == time(13, 45)
    assert got["due"] == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert got["tags"] == ["a", "b"] and got["buyers"] == [s["id"]]
    assert got["extra"] == {"nested": [1, 2, {"x": None}]}
    assert got["price"] == 9.75 and got["active"] is False and got["colour"] == "green"
    assert "preview" not in got
    assert got["version"] == 1 and got["created_by"] == "tester" and got["updated_by"] == "tester"
    assert got["created_at"].tzinfo is not None


def test_defaults_fill_missing_fields(published: Appbook) -> None:
    rec = published["items"].create({"code": "DEF"})
    assert (rec["price"], rec["active"], rec["status"], rec["qty"]) == (1.5, True, 0, None)


def test_all_field_errors_reported_together_and_nothing_written(published: Appbook) -> None:
    items = published["items"]
    bad = {
        "code": "x",
        "qty": 5000,
        "price": "cheap",
        "active": "yes",
        "day": "25/11/2026",
        "status": 9,
        "colour": "blue",
        "tags": ["a", 1],
        "link": "not a uri",
        "contact": "nobody",
        "unknown": 1,
        "id": 7,
    }
    with pytest.raises(ValidationError) as info:
        items.create(bad)
    errors = info.value.errors
    assert errors["code"] == ["must be at least 2 characters"]
    assert errors["qty"] == ["must be at most 1000"]
    assert errors["price"] == ["expected a number, got text 'cheap'"]
    assert errors["active"] == ["expected true or false, got text 'yes'"]
    assert errors["day"] == ["expected a date (YYYY-MM-DD), got '25/11/2026'"]
    assert errors["status"] == ["9 is not one of the choices: 0 (New), 1 (Open), 2 (Closed)"]
    assert errors["colour"] == ["'blue' is not one of the choices: red (Red), green (Green)"]
    assert errors["tags"] == ["item 1: expected text, got an integer 1"]
    assert "is not a valid URI" in errors["link"][0]
    assert errors["contact"] == ["'nobody' is not a valid email address"]
    assert errors["unknown"][0].startswith("unknown field of items")
    assert errors["id"] == ["is set by the engine and cannot be written"]
    assert items.count() == 0


def test_required_and_pattern(published: Appbook) -> None:
    with pytest.raises(ValidationError) as info:
        published["items"].create({"notes": "no code"})
    assert info.value.errors == {"code": ["is required"]}
    with pytest.raises(ValidationError) as info:
        published["items"].create({"code": "lower"})
    assert info.value.errors == {"code": ["does not match the pattern ^[A-Z]"]}


def test_references_and_files_must_exist(published: Appbook) -> None:
    with pytest.raises(ValidationError) as info:
        published["items"].create(
            {"code": "R1", "supplier": 999, "buyers": [998], "scan": "0" * 32}
        )
    assert info.value.errors == {
        "supplier": ["suppliers record 999 does not exist"],
        "buyers": ["suppliers record 998 does not exist"],
        "scan": [f"file {'0' * 32} does not exist"],
    }


def test_unique_violation_is_a_conflict_naming_the_field(published: Appbook) -> None:
    published["items"].create({"code": "U1"})
    with pytest.raises(Conflict) as info:
        published["items"].create({"code": "U1"})
    assert info.value.field == "code"
    assert "items.code" in info.value.message
    assert published["items"].count() == 1


def test_update_is_partial_and_bumps_version(published: Appbook) -> None:
    items = published["items"]
    rec = items.create({"code": "P1", "qty": 1, "notes": "keep"})
    later = items.update(rec["id"], {"qty": 2}, version=rec["version"])
    assert later["qty"] == 2 and later["notes"] == "keep" and later["version"] == 2
    assert later["updated_at"] >= rec["updated_at"]
    assert items.get(rec["id"]) == later


def test_stale_version_is_a_conflict_and_writes_nothing(published: Appbook) -> None:
    items = published["items"]
    rec = items.create({"code": "V1", "qty": 1})
    items.update(rec["id"], {"qty": 2}, version=1)
    with pytest.raises(Conflict, match="version 2, you had version 1"):
        items.update(rec["id"], {"qty": 3}, version=1)
    with pytest.raises(Conflict):
        items.delete(rec["id"], version=1)
    assert items.get(rec["id"])["qty"] == 2


def test_update_validates_and_cannot_clear_required(published: Appbook) -> None:
    items = published["items"]
    rec = items.create({"code": "C1"})
    with pytest.raises(ValidationError) as info:
        items.update(rec["id"], {"code": None, "qty": -1, "created_by": "me"})
    assert info.value.errors == {
        "code": ["is required"],
        "qty": ["must be at least 0"],
        "created_by": ["is set by the engine and cannot be written"],
    }


def test_update_without_changes_keeps_version(published: Appbook) -> None:
    items = published["items"]
    rec = items.create({"code": "N1", "qty": 4})
    assert items.update(rec["id"], {"qty": 4})["version"] == 1


def test_round_tripped_record_can_be_saved(published: Appbook) -> None:
    items = published["items"]
    rec = items.create({"code": "RT"})
    rec["qty"] = 7
    system = ("created_at", "created_by", "updated_at", "updated_by")
    saved = items.update(rec["id"], {k: v for k, v in rec.items() if k not in system})
    assert saved["qty"] == 7 and saved["version"] == 2


def test_missing_records_are_not_found(published: Appbook) -> None:
    items = published["items"]
    with pytest.raises(NotFound, match="items record 42 does not exist"):
        items.get(42)
    with pytest.raises(NotFound):
        items.update(42, {"qty": 1})
    with pytest.raises(NotFound):
        items.delete(42)
    with pytest.raises(NotFound, match="unknown component 'nope'"):
        published["nope"]


def test_delete_refused_while_referenced(published: Appbook) -> None:
    s = supplier(published)
    rec = published["items"].create({"code": "D1", "supplier": s["id"]})
    with pytest.raises(Conflict, match=r"referenced by 1 items record\(s\) through items.supplier"):
        published["suppliers"].delete(s["id"])
    published["items"].delete(rec["id"])
    published["suppliers"].delete(s["id"])
    assert published["suppliers"].count() == 0


def test_datetime_naive_is_utc(published: Appbook) -> None:
    rec = published["items"].create({"code": "T1", "due": datetime(2026, 1, 1, 12, 0)})
    assert rec["due"] == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    later = published["items"].create(
        {"code": "T2", "due": datetime(2026, 1, 1, 12, 0, tzinfo=UTC) + timedelta(hours=1)}
    )
    found = published["items"].query(where={"due": {"gt": "2026-01-01T12:30:00Z"}})
    assert [r["id"] for r in found] == [later["id"]]


def test_out_of_range_integers_and_ids(published: Appbook) -> None:
    with pytest.raises(ValidationError) as info:
        published["items"].create({"code": "BIG", "qty": 2**70, "supplier": 2**64})
    assert info.value.errors["supplier"][0].startswith("expected the id of a suppliers record")
    with pytest.raises(NotFound):
        published["items"].get(2**64)
    with pytest.raises(NotFound):
        published["items"].update(2**64, {"qty": 1})
