"""Queries: every operator, nesting, ordering, offset and cursor paging, counts, aggregates."""

from __future__ import annotations

from typing import Any

import pytest

from appbook.server.engine import Appbook
from appbook.server.errors import QueryError


@pytest.fixture
def items(published: Appbook) -> Any:
    handle = published["items"]
    rows = [
        {
            "code": "A1",
            "qty": 5,
            "price": 10.0,
            "status": 0,
            "notes": "Paper and pens",
            "due": "2026-01-01T00:00:00Z",
            "colour": "red",
        },
        {
            "code": "A2",
            "qty": 15,
            "price": 99.5,
            "status": 1,
            "notes": "ink",
            "due": "2026-02-01T00:00:00Z",
        },
        {
            "code": "B1",
            "qty": 15,
            "price": 0.5,
            "status": 2,
            "notes": None,
            "colour": "green",
            "active": False,
        },
        {"code": "B2", "qty": None, "price": 12.0, "status": 1, "notes": "PAPER 100%_x"},
        {"code": "C1", "qty": 30, "price": 12.0, "status": 0, "tags": ["x"]},
    ]
    for row in rows:
        handle.create(row)
    return handle


def codes(result: list[dict[str, Any]]) -> list[str]:
    return [r["code"] for r in result]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"qty": 15}, ["A2", "B1"]),
        ({"qty": {"eq": 15}}, ["A2", "B1"]),
        ({"qty": {"ne": 15}}, ["A1", "B2", "C1"]),
        ({"qty": {"lt": 15}}, ["A1"]),
        ({"qty": {"le": 15}}, ["A1", "A2", "B1"]),
        ({"qty": {"gt": 15}}, ["C1"]),
        ({"qty": {"ge": 15}}, ["A2", "B1", "C1"]),
        ({"status": {"in": [0, 2]}}, ["A1", "B1", "C1"]),
        ({"status": {"not_in": [0, 2]}}, ["A2", "B2"]),
        ({"colour": {"not_in": ["red"]}}, ["A2", "B1", "B2", "C1"]),
        ({"notes": {"contains": "paper"}}, ["A1", "B2"]),
        ({"notes": {"contains": "100%_"}}, ["B2"]),
        ({"notes": {"contains": "%"}}, ["B2"]),
        ({"code": {"startswith": "a"}}, ["A1", "A2"]),
        ({"qty": {"is_null": True}}, ["B2"]),
        ({"notes": {"is_null": False}}, ["A1", "A2", "B2"]),
        ({"qty": {"ge": 5, "lt": 30}}, ["A1", "A2", "B1"]),
        ({"or": [{"status": 2}, {"price": {"gt": 50}}]}, ["A2", "B1"]),
        ({"and": [{"price": 12.0}, {"not": {"status": 1}}]}, ["C1"]),
        ({"not": {"or": [{"qty": {"is_null": True}}, {"qty": {"lt": 20}}]}}, ["C1"]),
        ({"due": {"ge": "2026-01-15T00:00:00+00:00"}}, ["A2"]),
        ({"tags": ["x"]}, ["C1"]),
        ({"created_by": "tester", "version": 1}, ["A1", "A2", "B1", "B2", "C1"]),
    ],
)
def test_operator(items: Any, where: dict[str, Any], expected: list[str]) -> None:
    assert codes(items.query(where=where, order_by=["code"])) == expected
    assert items.count(where=where) == len(expected)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"nope": 1}, "where.nope: unknown field 'nope' of items"),
        ({"qty": {"like": 1}}, "where.qty.like: unknown operator 'like'"),
        ({"qty": {"gt": "many"}}, "where.qty.gt: expected an integer, got text 'many'"),
        ({"qty": {"in": 5}}, "where.qty.in: expected a list of values"),
        ({"status": {"eq": 7}}, "where.status.eq: 7 is not one of the choices"),
        ({"qty": {"contains": "1"}}, "where.qty.contains: contains applies to text fields"),
        ({"qty": {"is_null": "yes"}}, "where.qty.is_null: expected true or false"),
        ({"or": {"qty": 1}}, "where.or: expected a list of conditions"),
        ({"qty": {}}, "where.qty: empty condition"),
        ({"preview": "x"}, "unknown field 'preview'"),
    ],
)
def test_malformed_filters_raise_query_error(
    items: Any, where: dict[str, Any], message: str
) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        items.query(where=where)


def test_order_by_several_fields_with_ties_by_id(items: Any) -> None:
    assert codes(items.query(order_by=["-price", "code"])) == ["A2", "B2", "C1", "A1", "B1"]
    assert codes(items.query(order_by="qty")) == ["A1", "A2", "B1", "C1", "B2"]  # nulls last
    assert codes(items.query(order_by="-qty")) == ["B2", "C1", "A2", "B1", "A1"]  # exact reverse
    with pytest.raises(QueryError, match=r"order_by\[0\]: unknown field 'bogus'"):
        items.query(order_by=["bogus"])
    with pytest.raises(QueryError, match="cannot order by json field"):
        items.query(order_by=["extra"])


def test_limit_offset_and_validation(items: Any) -> None:
    assert codes(items.query(order_by="code", limit=2, offset=1)) == ["A2", "B1"]
    with pytest.raises(QueryError, match="limit: expected an integer from 1"):
        items.query(limit=0)
    with pytest.raises(QueryError, match="offset: expected a non-negative integer"):
        items.query(offset=-1)


@pytest.mark.parametrize(
    "order",
    [
        *[["qty"], ["-qty"], ["-price", "code"], ["notes"], ["-due"], ["active"]],
        *[["-active", "-qty"], ["-id"], ["created_at"], ["-updated_at", "code"], None],
    ],
)
def test_cursor_walks_every_row_once(items: Any, order: list[str] | None) -> None:
    everything = codes(items.query(order_by=order, limit=100))
    seen: list[str] = []
    cursor = None
    while True:
        page = items.query(order_by=order, limit=2, cursor=cursor)
        seen += codes(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything


def test_cursor_must_match_order(items: Any) -> None:
    page = items.query(order_by=["qty"], limit=2)
    assert page.next_cursor is not None
    with pytest.raises(QueryError, match="cursor: it was made for order_by"):
        items.query(order_by=["code"], cursor=page.next_cursor)
    with pytest.raises(QueryError, match="not a cursor returned by a previous query"):
        items.query(cursor="garbage!")


def test_total_only_when_asked(items: Any) -> None:
    page = items.query(where={"status": 1}, limit=1)
    assert page.total is None
    page = items.query(where={"status": 1}, limit=1, total=True)
    assert page.total == 2 and len(page) == 1


def test_fields_selects_columns(items: Any) -> None:
    page = items.query(fields=["code"], order_by="code", limit=1)
    assert page == [{"id": page[0]["id"], "code": "A1"}]
    frame = items.query(order_by="code").to_pandas()
    assert list(frame["code"]) == ["A1", "A2", "B1", "B2", "C1"]
    assert frame.index.name == "id"


def test_aggregate(items: Any) -> None:
    rows = items.aggregate(
        ["status"], {"n": "count", "total": "sum(price)", "top": "max(qty)", "avg": "avg(price)"}
    )
    by_status = {r["status"]: r for r in rows}
    assert by_status[0]["n"] == 2 and by_status[0]["total"] == 22.0 and by_status[0]["top"] == 30
    assert by_status[1]["avg"] == pytest.approx((99.5 + 12.0) / 2)
    assert items.aggregate(metrics={"n": "count(qty)"}) == [{"n": 4}]
    assert items.aggregate(metrics={"n": "count"}) == [{"n": 5}]  # every record, no group
    assert items.aggregate() == [{"count": 5}]
    ordered = items.aggregate(["status"], {"n": "count"}, order_by=["-n", "status"])
    assert [r["status"] for r in ordered] == [0, 1, 2]
    with pytest.raises(QueryError, match="sum needs a number field"):
        items.aggregate(metrics={"x": "sum(code)"})
    with pytest.raises(QueryError, match="expected count, sum"):
        items.aggregate(metrics={"x": "median(qty)"})
