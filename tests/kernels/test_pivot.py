"""The pivot grid on SQLite and PostgreSQL: cells and totals are the engine's aggregates
(never rows loaded into the kernel), headers show enum labels in choice order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from appbook.kernels.ui.pivot import PivotGrid, group_key, number_text, plain
from appbook.server.definitions.models import FieldDef
from appbook.server.engine import Appbook
from appbook.server.errors import QueryError

SALES = """
name: sales
fields:
  region:  {type: enum, choices: {s: South, n: North}}
  product: {type: enum, choices: {2: Tea, 1: Coffee}}
  shop:    {type: string}
  amount:  {type: number}
  units:   {type: integer}
  extra:   {type: json}
"""
# (region, product, shop, amount, units)
ROWS = [
    ("n", 1, "x", 10.0, 1),
    ("n", 1, "y", 5.5, 2),
    ("n", 2, "x", 3.0, 3),
    ("s", 1, "x", 7.0, 4),
    ("s", None, "y", None, 5),
    (None, 2, "z", 2.0, 6),
]


@pytest.fixture
def sales(app: Appbook) -> Appbook:
    app.publish_texts({"sales.component.yaml": SALES})
    keys = ("region", "product", "shop", "amount", "units")
    app["sales"].import_rows([dict(zip(keys, row, strict=True)) for row in ROWS])
    return app


@pytest.fixture
def pivots() -> Iterator[Callable[..., PivotGrid]]:
    """Make pivots that are closed (live threads stopped) after the test."""
    made: list[PivotGrid] = []

    def make(app: Appbook, *args: Any, **kwargs: Any) -> PivotGrid:
        pivot = PivotGrid(app, "sales", *args, **kwargs)
        made.append(pivot)
        return pivot

    yield make
    for pivot in made:
        pivot.close()


def test_counts_by_two_enums_with_labels_and_totals(
    sales: Appbook, pivots: Callable[..., PivotGrid]
) -> None:
    pivot = pivots(sales, "region", "product")
    assert pivot.row_keys == ["s", "n", None] and pivot.column_keys == [2, 1, None]
    assert pivot.table_text() == [
        ["Region \\ Product", "Tea", "Coffee", "(none)", "Total"],
        ["South", "", "1", "1", "2"],
        ["North", "1", "2", "", "3"],
        ["(none)", "1", "", "", "1"],
        ["Total", "2", "3", "1", "6"],
    ]
    assert pivot.cells[("n", 1)] == 2 and ("n", None) not in pivot.cells
    assert pivot.grand_total == 6 and pivot.status.text == ""
    html = pivot.table.value
    assert html.startswith("<table") and ">Coffee</th>" in html and ">South</th>" in html


def test_sums_and_averages_total_by_the_engine(
    sales: Appbook, pivots: Callable[..., PivotGrid]
) -> None:
    pivot = pivots(sales, "shop", "region", aggregate="sum", value="amount")
    assert pivot.table_text() == [
        ["Shop \\ Region", "South", "North", "(none)", "Total"],
        ["x", "7", "13", "", "20"],
        ["y", "", "5.50", "", "5.50"],
        ["z", "", "", "2", "2"],
        ["Total", "7", "18.50", "2", "27.50"],
    ]
    # y/South has a record but no amount: the engine's sum is None, shown empty
    assert pivot.cells[("y", "s")] is None

    pivot = pivots(sales, "region", "shop", aggregate="avg", value="units")
    assert pivot.row_totals == pytest.approx({"s": 4.5, "n": 2.0, None: 6.0})
    assert pivot.column_totals == pytest.approx({"x": 8 / 3, "y": 3.5, "z": 6.0})
    assert pivot.grand_total == pytest.approx(3.5)  # not the average of the averages
    assert pivot.table_text()[-1] == ["Total", "2.67", "3.50", "6", "3.50"]


def test_min_max_and_a_filter(sales: Appbook, pivots: Callable[..., PivotGrid]) -> None:
    pivot = pivots(sales, "region", "product", aggregate="max", value="units")
    assert pivot.cells == {("n", 1): 2, ("n", 2): 3, ("s", 1): 4, ("s", None): 5, (None, 2): 6}
    assert pivot.grand_total == 6 and pivot.row_totals["n"] == 3

    pivot = pivots(sales, "region", "product", aggregate="min", value="amount",
                   where={"shop": "x"})  # fmt: skip
    assert pivot.row_keys == ["s", "n"] and pivot.column_keys == [2, 1]
    assert pivot.cells == {("n", 1): 10.0, ("n", 2): 3.0, ("s", 1): 7.0}
    assert pivot.grand_total == 3.0


def test_the_pivot_never_loads_records(sales: Appbook, pivots: Callable[..., PivotGrid]) -> None:
    calls: list[str] = []

    def spy(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return method(*args, **kwargs)

        return call

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the pivot read records")

    for aggregate, value in (("count", None), ("sum", "units")):
        pivot = pivots(sales, "region", "product", aggregate=aggregate, value=value)
        handle = pivot.handle
        handle.aggregate = spy("aggregate", handle.aggregate)  # type: ignore[method-assign]
        handle.count = spy("count", handle.count)  # type: ignore[method-assign]
        handle.query = forbidden  # type: ignore[method-assign]
        calls.clear()
        assert pivot.refresh() and pivot.grand_total == (6 if value is None else 21)
        assert calls == ["aggregate"] * 4  # cells, row and column totals, grand total


def test_no_data_shows_a_message(sales: Appbook, pivots: Callable[..., PivotGrid]) -> None:
    pivot = pivots(sales, "region", "product", where={"shop": "nowhere"})
    assert pivot.row_keys == [] and pivot.cells == {} and pivot.grand_total == 0
    assert "No data to show." in pivot.table.value
    assert pivot.table_text() == [["Region \\ Product", "Total"], ["Total", "0"]]


def test_bad_configuration_fails_early(sales: Appbook) -> None:
    with pytest.raises(QueryError, match="rows: unknown field 'nope' of sales"):
        PivotGrid(sales, "sales", "nope", "region")
    with pytest.raises(QueryError, match="columns: unknown field 'nope' of sales"):
        PivotGrid(sales, "sales", "region", "nope")
    with pytest.raises(QueryError, match="value: unknown field 'nope' of sales"):
        PivotGrid(sales, "sales", "region", "shop", aggregate="sum", value="nope")
    with pytest.raises(
        ValueError, match="value: sum needs a number field, 'shop' is of type string"
    ):
        PivotGrid(sales, "sales", "region", "product", aggregate="sum", value="shop")
    with pytest.raises(ValueError, match="value: avg needs a number field to aggregate"):
        PivotGrid(sales, "sales", "region", "product", aggregate="avg")
    with pytest.raises(ValueError, match="unknown aggregate 'total'"):
        PivotGrid(sales, "sales", "region", "product", aggregate="total")
    with pytest.raises(ValueError, match="columns: cannot group by 'extra', a field of type json"):
        PivotGrid(sales, "sales", "region", "extra")
    with pytest.raises(ValueError, match="rows and columns must be different fields"):
        PivotGrid(sales, "sales", "region", "region")


def test_engine_errors_show_in_the_status_line(
    sales: Appbook, pivots: Callable[..., PivotGrid]
) -> None:
    pivot = pivots(sales, "region", "product", where={"units": {"gt": "many"}})
    assert pivot.status.kind == "error" and "units" in pivot.status.text
    assert pivot.revision == 0 and not pivot.refresh()


def test_a_live_pivot_recomputes_when_a_record_changes(
    sales: Appbook, pivots: Callable[..., PivotGrid]
) -> None:
    pivot = pivots(sales, "region", "product", aggregate="sum", value="units", live=True)
    assert pivot.cells[("s", 1)] == 4
    changed = threading.Event()
    pivot.observe(lambda _: changed.set(), "revision")
    sales["sales"].create({"region": "s", "product": 1, "units": 10})
    deadline = time.monotonic() + 5
    while pivot.cells[("s", 1)] != 14 and changed.wait(deadline - time.monotonic()):
        changed.clear()
    assert pivot.cells[("s", 1)] == 14 and pivot.grand_total == 31


def test_helpers() -> None:
    from decimal import Decimal

    assert plain(Decimal("3")) == 3 and isinstance(plain(Decimal("3.000")), int)
    assert plain(Decimal("1.5000")) == 1.5 and plain(None) is None
    assert [number_text(v) for v in (None, 3, 1234.0, 2 / 3, 1e6 + 0.5)] == [
        "", "3", "1,234", "0.67", "1,000,000.50"
    ]  # fmt: skip
    enum = FieldDef(type="enum", choices={"b": "B", "a": "A"})
    assert sorted(["a", None, "zz", "b"], key=group_key(enum)) == ["b", "a", "zz", None]
    assert sorted([3, None, 1], key=group_key(FieldDef(type="integer"))) == [1, 3, None]
