"""Charts on SQLite and PostgreSQL: the marks carry exactly the engine's numbers, enum
labels in choice order, empty data draws an empty chart, bad configuration fails early."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from appbook.kernels.ui.chart import Chart
from appbook.server.engine import Appbook
from appbook.server.errors import QueryError


def kind_of(widget: object) -> str:
    """The bqplot class of a mark or scale (bqplot itself is imported through the chart)."""
    return type(widget).__name__


ORDERS = """
name: orders
fields:
  code:   {type: string}
  status: {type: enum, choices: {0: New, 1: Open, 2: Closed}}
  region: {type: enum, choices: {s: South, n: North}}
  amount: {type: number}
  qty:    {type: integer}
  tags:   {type: array, of: string}
"""
# (code, status, region, amount, qty); the first status and region choices come last by value
ROWS = [
    ("A", 1, "n", 10.0, 1),
    ("B", 0, "s", 2.5, 2),
    ("C", 1, "s", None, 3),
    ("D", 2, "n", 4.0, 4),
    ("E", None, "n", 1.0, 5),
    ("F", 1, None, 6.5, 6),
]


@pytest.fixture
def orders(app: Appbook) -> Appbook:
    app.publish_texts({"orders.component.yaml": ORDERS})
    keys = ("code", "status", "region", "amount", "qty")
    app["orders"].import_rows([dict(zip(keys, row, strict=True)) for row in ROWS])
    return app


@pytest.fixture
def charts() -> Iterator[Callable[..., Chart]]:
    """Make charts that are closed (live threads stopped) after the test."""
    made: list[Chart] = []

    def make(app: Appbook, *args: Any, **kwargs: Any) -> Chart:
        chart = Chart(app, "orders", *args, **kwargs)
        made.append(chart)
        return chart

    yield make
    for chart in made:
        chart.close()


def wait_for(widget: Any, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Wait until ``predicate()`` holds, re-checking each time the widget reloads."""
    loaded = threading.Event()
    widget.observe(lambda _: loaded.set(), "revision")
    deadline = time.monotonic() + timeout
    while not predicate():
        if not loaded.wait(max(0.0, deadline - time.monotonic())):
            return predicate()
        loaded.clear()
    return True


def test_a_bar_chart_of_records_plots_one_bar_per_record(
    orders: Appbook, charts: Callable[..., Chart]
) -> None:
    chart = charts(orders, "code", "amount")
    assert chart.labels == ["A", "B", "D", "E", "F"]  # C has no amount: left out
    assert chart.values == [10.0, 2.5, 4.0, 1.0, 6.5]
    assert kind_of(chart.mark) == "Bars" and kind_of(chart.mark.scales["x"]) == "OrdinalScale"
    assert list(chart.mark.x) == chart.labels and list(chart.mark.y) == chart.values
    assert chart.figure.title == "Amount by Code" and chart.status.text == ""
    assert [a.label for a in chart.figure.axes] == ["Code", "Amount"]

    chart = charts(orders, "code", "qty", order_by="-qty", where={"qty": {"le": 3}})
    assert chart.labels == ["C", "B", "A"] and chart.values == [3.0, 2.0, 1.0]
    chart = charts(orders, "code", "qty", limit=2)
    assert chart.labels == ["A", "B"]


def test_records_with_an_enum_x_show_its_labels(
    orders: Appbook, charts: Callable[..., Chart]
) -> None:
    chart = charts(orders, "status", "qty", kind="line", order_by=["qty"])
    assert list(chart.mark.x) == ["Open", "New", "Open", "Closed", "(none)", "Open"]
    assert kind_of(chart.mark) == "Lines"


@pytest.mark.parametrize(
    ("aggregate", "y", "expected"),
    [
        ("count", None, [1, 3, 1, 1]),
        ("count", "amount", [1, 2, 1, 1]),  # records with an amount
        ("sum", "amount", [2.5, 16.5, 4.0, 1.0]),
        ("avg", "qty", [2.0, 10 / 3, 4.0, 5.0]),
        ("min", "qty", [2, 1, 4, 5]),
        ("max", "amount", [2.5, 10.0, 4.0, 1.0]),
    ],
)
def test_aggregates_by_an_enum_in_choice_order(
    orders: Appbook,
    charts: Callable[..., Chart],
    aggregate: str,
    y: str | None,
    expected: list[float],
) -> None:
    chart = charts(orders, "status", y, aggregate=aggregate)
    assert chart.labels == ["New", "Open", "Closed", "(none)"]
    assert chart.values == pytest.approx(expected)
    assert list(chart.mark.x) == chart.labels
    assert list(chart.mark.y) == pytest.approx(expected)


def test_a_pie_of_counts_by_a_text_enum(orders: Appbook, charts: Callable[..., Chart]) -> None:
    chart = charts(orders, "region", kind="pie", aggregate="count")
    assert kind_of(chart.mark) == "Pie" and chart.figure.axes == []
    assert chart.mark.labels == ["South", "North", "(none)"]  # choice order, not value order
    assert list(chart.mark.sizes) == [2, 3, 1]
    assert chart.figure.title == "Count by Region"

    chart = charts(orders, "region", "amount", kind="pie", aggregate="sum", title="Takings")
    assert list(chart.mark.sizes) == [2.5, 15.0, 6.5] and chart.figure.title == "Takings"


def test_a_line_over_a_number_x_uses_a_linear_axis(
    orders: Appbook, charts: Callable[..., Chart]
) -> None:
    chart = charts(orders, "qty", "amount", kind="line")
    assert kind_of(chart.mark.scales["x"]) == "LinearScale"
    assert list(chart.mark.x) == [1, 2, 4, 5, 6] and list(chart.mark.y) == [10, 2.5, 4, 1, 6.5]
    assert chart.labels == ["1", "2", "4", "5", "6"]

    chart = charts(orders, "qty", kind="line", aggregate="count", where={"qty": {"gt": 4}})
    assert list(chart.mark.x) == [5, 6] and list(chart.mark.y) == [1, 1]


def test_no_data_draws_an_empty_chart_with_a_message(
    orders: Appbook, charts: Callable[..., Chart]
) -> None:
    for kind in ("bar", "line"):
        chart = charts(orders, "code", "amount", kind=kind, where={"code": "nothing"})
        assert list(chart.mark.x) == [] and list(chart.mark.y) == []
        assert (chart.status.kind, chart.status.text) == ("info", "No data to show.")
    chart = charts(orders, "status", kind="pie", aggregate="count", where={"qty": 99})
    assert list(chart.mark.sizes) == [] and chart.status.text == "No data to show."

    orders["orders"].create({"code": "Z", "status": 2, "qty": 99})  # data arrives
    assert chart.refresh() and chart.labels == ["Closed"] and chart.status.text == ""


def test_bad_configuration_fails_early_naming_the_problem(orders: Appbook) -> None:
    with pytest.raises(QueryError, match="x: unknown field 'nope' of orders"):
        Chart(orders, "orders", "nope", "amount")
    with pytest.raises(QueryError, match="y: unknown field 'nope' of orders"):
        Chart(orders, "orders", "status", "nope", aggregate="sum")
    with pytest.raises(ValueError, match="y: sum needs a number field, 'code' is of type string"):
        Chart(orders, "orders", "status", "code", aggregate="sum")
    with pytest.raises(ValueError, match="y: avg needs a number field, 'region' is of type enum"):
        Chart(orders, "orders", "status", "region", aggregate="avg")
    with pytest.raises(
        ValueError, match="y: a chart needs a number field, 'code' is of type string"
    ):
        Chart(orders, "orders", "status", "code")
    with pytest.raises(ValueError, match="y: a chart of records needs a number field"):
        Chart(orders, "orders", "status")
    with pytest.raises(ValueError, match="unknown chart kind 'donut' \\(kinds: bar, line, pie\\)"):
        Chart(orders, "orders", "status", kind="donut", aggregate="count")
    with pytest.raises(ValueError, match="unknown aggregate 'median'"):
        Chart(orders, "orders", "status", "qty", aggregate="median")
    with pytest.raises(ValueError, match="y: max needs a number field to aggregate"):
        Chart(orders, "orders", "status", aggregate="max")
    with pytest.raises(ValueError, match="x: cannot group by 'tags', a field of type array"):
        Chart(orders, "orders", "tags", aggregate="count")
    with pytest.raises(ValueError, match="order_by is for charts of records"):
        Chart(orders, "orders", "status", aggregate="count", order_by="status")


def test_engine_errors_show_in_the_status_line(
    orders: Appbook, charts: Callable[..., Chart]
) -> None:
    chart = charts(orders, "code", "amount", where={"nope": 1})
    assert chart.status.kind == "error" and "unknown field 'nope' of orders" in chart.status.text
    assert chart.values == [] and not chart.refresh()


def test_a_live_chart_redraws_when_a_record_changes(
    orders: Appbook, charts: Callable[..., Chart]
) -> None:
    chart = charts(orders, "status", "amount", aggregate="sum", live=True)
    assert chart.values == [2.5, 16.5, 4.0, 1.0]
    first = orders["orders"].query({"code": "A"})[0]
    orders["orders"].update(first["id"], {"amount": 20.0})
    assert wait_for(chart, lambda: chart.values == [2.5, 26.5, 4.0, 1.0]), chart.values
    assert list(chart.mark.y) == [2.5, 26.5, 4.0, 1.0]

    threads = [t for t in threading.enumerate() if t.name == "appbook-live-orders"]
    assert len(threads) == 1
    chart.close()
    assert not threads[0].is_alive()
