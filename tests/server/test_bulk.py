"""Bulk import (all rows or none, errors by row) and streamed export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from appbook.server.bulk import export_rows
from appbook.server.engine import Appbook
from appbook.server.errors import ValidationError


def test_csv_import_converts_text_values(published: Appbook, tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "code,qty,price,active,day,due,status,colour,tags,extra\n"
        'A1,3,2.5,yes,2026-01-02,2026-01-02T10:00:00Z,Open,red,"[""x""]","{""k"": 1}"\n'
        "A2,,,false,,,2,,,\n"
    )
    result = published["items"].import_rows(str(path))
    assert result.created == 2
    a1, a2 = published["items"].query(order_by="code")
    assert (a1["qty"], a1["price"], a1["active"], a1["status"], a1["tags"], a1["extra"]) == (
        3,
        2.5,
        True,
        1,
        ["x"],
        {"k": 1},
    )
    assert (a2["qty"], a2["price"], a2["active"], a2["status"]) == (
        None,
        1.5,
        False,
        2,
    )  # empty -> default


def test_jsonl_import_from_a_stream(published: Appbook) -> None:
    data = b'{"code": "J1", "qty": 1}\n\n{"code": "J2", "qty": 2}\n'
    result = published["items"].import_rows(io.BytesIO(data), format="jsonl")
    assert result.created == 2 and result.last_id is not None
    assert published["items"].count() == 2


def test_errors_by_row_and_nothing_written(published: Appbook) -> None:
    rows = [
        {"code": "OK"},
        {"code": "x", "qty": -1},
        {"code": "OK"},
        {"qty": 2},
        {"code": "S1", "supplier": 77},
    ]
    with pytest.raises(ValidationError) as info:
        published["items"].import_rows(rows)
    errors = info.value.errors
    assert errors["row 2.code"] == ["must be at least 2 characters"]
    assert errors["row 2.qty"] == ["must be at least 0"]
    assert errors["row 3.code"] == ["'OK' is already in row 1"]
    assert errors["row 4.code"] == ["is required"]
    assert "nothing was written" in info.value.message
    assert published["items"].count() == 0


def test_reference_errors_are_by_row(published: Appbook) -> None:
    with pytest.raises(ValidationError) as info:
        published["items"].import_rows([{"code": "S1"}, {"code": "S2", "supplier": 77}])
    assert info.value.errors == {"row 2.supplier": ["suppliers record 77 does not exist"]}
    assert published["items"].count() == 0


def test_unique_against_stored_rows_writes_nothing(published: Appbook) -> None:
    published["items"].create({"code": "DUP"})
    with pytest.raises(Exception, match=r"items\.code"):
        published["items"].import_rows([{"code": "NEW"}, {"code": "DUP"}])
    assert published["items"].count() == 1


def test_invalid_json_line_names_the_row(published: Appbook) -> None:
    with pytest.raises(ValidationError) as info:
        published["items"].import_rows(io.BytesIO(b'{"code": "A1"}\n{oops\n'), format="jsonl")
    assert list(info.value.errors) == ["row 2"]


def test_unknown_format_is_refused(published: Appbook, tmp_path: Path) -> None:
    path = tmp_path / "items.xml"
    path.write_text("<x/>")
    with pytest.raises(ValidationError, match="expected csv or jsonl"):
        published["items"].import_rows(str(path))


def test_import_appends_events(published: Appbook) -> None:
    published["items"].import_rows([{"code": f"E{i}"} for i in range(5)])
    with published.bus.subscribe(component="items", since=0) as sub:
        events = [sub.get(timeout=5) for _ in range(5)]
    assert [e.op for e in events if e is not None] == ["create"] * 5


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_round_trips(published: Appbook, fmt: str) -> None:
    published["items"].import_rows(
        [{"code": f"X{i:04d}", "qty": i % 1000, "tags": ["a"]} for i in range(2500)]
    )
    out = io.StringIO()
    assert export_rows(published, "items", out, format=fmt, where={"code": {"lt": "X2000"}}) == 2000
    text = out.getvalue().splitlines()
    if fmt == "jsonl":
        first = json.loads(text[0])
        assert first["code"] == "X0000" and first["tags"] == ["a"]
    else:
        assert text[0].startswith("id,created_at,created_by,updated_at,updated_by,version,code")
        assert len(text) == 2001
