"""The data grid, driven through its widget API on SQLite and PostgreSQL: every page, sort
and filter agrees with the engine's own query, and live updates arrive from other processes."""

from __future__ import annotations

import base64
import csv
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any, TypeVar

import pytest
from traitlets import TraitError

from appbook.kernels.ui.grid import DataGrid
from appbook.kernels.ui.grid_filters import (
    BooleanFilter,
    ChoiceFilter,
    ColumnFilter,
    DateRangeFilter,
    RangeFilter,
    ReferenceFilter,
    TextFilter,
    cell_html,
    cell_text,
    default_columns,
)
from appbook.server.definitions.models import FieldDef
from appbook.server.engine import Appbook

ROOT = Path(__file__).resolve().parents[2]
N = 120

Record = dict[str, Any]
Kind = TypeVar("Kind", bound=ColumnFilter)


@pytest.fixture
def items(published: Appbook) -> list[Record]:
    """120 items with every column type, some values missing; returned in id order."""
    suppliers = [published["suppliers"].create({"name": n})["id"] for n in ("Acme", "Bolt", "Cog")]
    published["items"].import_rows(
        {
            "code": f"C{i:03d}",
            "notes": "<b>bold</b> " * (i % 3),
            "qty": None if i % 13 == 0 else i % 17,
            "price": None if i % 15 == 0 else round(i * 1.25, 2),
            "active": i % 4 != 0,
            "day": date(2026, 2, 1 + i % 28),
            "at_time": clock(i % 24, 30),
            "due": None if i % 10 == 0 else datetime(2026, 1, 1 + i % 28, 10, 0, 0, 123456, UTC),
            "status": i % 3,
            "colour": ["red", "green", None][i % 3],
            "supplier": [*suppliers, None][i % 4],
        }
        for i in range(N)
    )
    return list(published["items"].query(order_by=["id"], limit=1000))


@pytest.fixture
def grids() -> Iterator[Callable[..., DataGrid]]:
    """Make grids that are closed (live threads stopped) after the test."""
    made: list[DataGrid] = []

    def make(app: Appbook, component: str = "items", **kwargs: Any) -> DataGrid:
        grid = DataGrid(app, component, **kwargs)
        made.append(grid)
        return grid

    yield make
    for grid in made:
        grid.close()


def every_id(grid: DataGrid) -> list[int]:
    """The ids of every page, from the first, in order."""
    assert grid.first_page()
    ids = [r["id"] for r in grid.rows]
    while grid.next_page():
        ids += [r["id"] for r in grid.rows]
    return ids


def column(grid: DataGrid, name: str, kind: type[Kind]) -> Kind:
    """The filter of column ``name``, which must be of ``kind``."""
    found = grid.filters[name]
    assert isinstance(found, kind), (name, type(found).__name__)
    return found


def ids_of(records: list[Record], keep: Callable[[Record], bool]) -> list[int]:
    return [r["id"] for r in records if keep(r)]


def wait_for(grid: DataGrid, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Wait until ``predicate()`` holds, re-checking each time the grid loads rows."""
    loaded = threading.Event()

    def poke(change: object) -> None:
        loaded.set()

    grid.observe(poke, "revision")
    try:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            loaded.wait(left)
            loaded.clear()
        return True
    finally:
        grid.unobserve(poke, "revision")


# -- paging -------------------------------------------------------------------------------


def test_pages_forward_and_back_cover_every_row_once(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, page_size=25)
    assert (grid.total, len(grid.rows), grid.page) == (N, 25, 0)
    assert grid.status.value == "rows 1\u201325 of 120"
    assert grid.pager_buttons[1].disabled and not grid.pager_buttons[2].disabled

    pages = [[r["id"] for r in grid.rows]]
    while grid.next_page():
        pages.append([r["id"] for r in grid.rows])
    assert [len(p) for p in pages] == [25, 25, 25, 25, 20]
    assert [i for p in pages for i in p] == [r["id"] for r in items]
    assert grid.status.value == "rows 101\u2013120 of 120"
    assert grid.pager_buttons[2].disabled and not grid.next_page()

    back = [[r["id"] for r in grid.rows]]
    while grid.prev_page():
        back.append([r["id"] for r in grid.rows])
    assert back == pages[::-1] and grid.page == 0 and not grid.prev_page()

    grid.pager_buttons[2].click()  # the widgets drive the same paging
    assert grid.rows[0]["id"] == pages[1][0] and grid.page == 1
    grid.pager_buttons[0].click()
    assert grid.rows[0]["id"] == pages[0][0] and grid.page == 0


def test_the_total_is_counted_on_load_and_filter_change_only(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, page_size=10)
    counted: list[bool] = []
    query = grid.handle.query

    def spy(*args: Any, **kwargs: Any) -> Any:
        counted.append(kwargs["total"])
        return query(*args, **kwargs)

    grid.handle.query = spy  # type: ignore[method-assign]
    grid.next_page()
    grid.next_page()
    grid.prev_page()
    grid.sort("qty")
    assert counted == [False, False, False, False] and grid.total == N
    grid.set_filter("status", 1)
    assert counted[-1] is True and grid.total == len(ids_of(items, lambda r: r["status"] == 1))
    grid.refresh()
    assert counted[-1] is True


def test_page_size_changes_rebuild_the_rows(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, page_size=25)
    grid.next_page()
    grid.page_size = 50
    assert len(grid.rows) == 50 and grid.page == 0 and len(grid.body.children) == 50
    assert every_id(grid) == [r["id"] for r in items]
    with pytest.raises(TraitError, match="1 to 10,000"):
        grid.page_size = 0


# -- sorting ------------------------------------------------------------------------------

SORTABLE = ["id", "code", "notes", "qty", "price", "day", "at_time", "due", "status", "colour",
            "supplier"]  # fmt: skip


def test_sorting_on_every_column_type_matches_the_engine(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, page_size=25)
    for column in SORTABLE:
        for descending in (False, True):
            grid.sort(column, descending=descending)
            key = ("-" if descending else "") + column
            expected = published["items"].query(order_by=[key], limit=1000)
            assert every_id(grid) == [r["id"] for r in expected], key
    grid.sort(None)
    assert grid.order_by == [] and every_id(grid) == [r["id"] for r in items]


def test_sorting_by_a_boolean_column_pages_through(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, order_by=["active"], page_size=25)
    expected = published["items"].query(order_by=["active"], limit=1000)
    assert every_id(grid) == [r["id"] for r in expected], grid.error


def test_header_clicks_go_ascending_descending_unsorted(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published)
    button = grid.sort_buttons["price"]
    button.click()
    assert grid.order_by == ["price"] and button.description == "Price \u25b2"
    assert grid.rows[0]["price"] == min(r["price"] for r in items if r["price"] is not None)
    button.click()
    assert grid.order_by == ["-price"] and button.description == "Price \u25bc"
    assert grid.rows[0]["price"] is None  # descending is the exact reverse: nulls first
    button.click()
    assert grid.order_by == [] and button.description == "Price"
    grid.sort_buttons["qty"].click()
    assert grid.order_by == ["qty"] and grid.sort_buttons["price"].description == "Price"


# -- filters ------------------------------------------------------------------------------


def test_each_filter_kind_filters(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, page_size=500)
    acme = items[0]["supplier"]
    cases: list[tuple[str, Any, Callable[[Record], bool]]] = [
        ("code", "c01", lambda r: "c01" in r["code"].lower()),
        ("price", (10, 50), lambda r: r["price"] is not None and 10 <= r["price"] <= 50),
        ("qty", (None, "3"), lambda r: r["qty"] is not None and r["qty"] <= 3),
        ("qty", 5, lambda r: r["qty"] == 5),
        ("due", (date(2026, 1, 5), date(2026, 1, 7)),
         lambda r: r["due"] is not None and 5 <= r["due"].day <= 7),
        ("due", ("2026-01-05T10:00:00", None),
         lambda r: r["due"] is not None and r["due"].day >= 5),
        ("day", (date(2026, 2, 3), date(2026, 2, 3)), lambda r: r["day"] == date(2026, 2, 3)),
        ("at_time", ("08:00", "09:59"), lambda r: clock(8) <= r["at_time"] <= clock(9, 59)),
        ("status", 2, lambda r: r["status"] == 2),
        ("status", "Open", lambda r: r["status"] == 1),
        ("colour", "green", lambda r: r["colour"] == "green"),
        ("active", False, lambda r: r["active"] is False),
        ("supplier", acme, lambda r: r["supplier"] == acme),
    ]  # fmt: skip
    for column, value, keep in cases:
        assert grid.set_filter(column, value), (column, value, grid.error)
        expected = ids_of(items, keep)
        assert expected, (column, value)  # each case keeps some rows and drops others
        assert len(expected) < N, (column, value)
        assert ([r["id"] for r in grid.rows], grid.total) == (expected, len(expected)), column
        assert grid.set_filter(column, None) and grid.total == N
    assert grid.error == ""


def test_each_column_gets_the_filter_of_its_type(
    published: Appbook, grids: Callable[..., DataGrid]
) -> None:
    defn = published["items"].definition
    grid = grids(published, columns=[*default_columns(defn), "tags"])
    kinds = {name: type(f).__name__ for name, f in grid.filters.items()}
    assert kinds == {
        "id": "RangeFilter", "code": "TextFilter", "notes": "TextFilter", "qty": "RangeFilter",
        "price": "RangeFilter", "active": "BooleanFilter", "day": "DateRangeFilter",
        "at_time": "RangeFilter", "due": "DateRangeFilter", "status": "ChoiceFilter",
        "colour": "ChoiceFilter", "supplier": "ReferenceFilter", "link": "TextFilter",
        "contact": "TextFilter", "tags": "ColumnFilter",
    }  # fmt: skip
    assert column(grid, "supplier", ReferenceFilter).box.placeholder == "id"
    assert [o[0] for o in column(grid, "status", ChoiceFilter).menu.options] == [
        "any", "New", "Open", "Closed"
    ]  # fmt: skip
    assert grid.sort_buttons["tags"].disabled and not grid.set_filter("tags", ["x"])
    assert grid.error == "Tags: array columns cannot be filtered"


def test_filters_combine_and_the_widgets_drive_them(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, page_size=500)
    column(grid, "status", ChoiceFilter).menu.label = "Closed"  # the user picks a choice
    column(grid, "price", RangeFilter).low.value = "20"  # and types a minimum
    column(grid, "active", BooleanFilter).menu.label = "yes"
    expected = ids_of(
        items,
        lambda r: r["status"] == 2 and r["active"] and r["price"] is not None and r["price"] >= 20,
    )
    assert [r["id"] for r in grid.rows] == expected and grid.total == len(expected)
    assert grid.where == {"status": 2, "price": {"ge": 20.0}, "active": True}

    grid.set_filter("code", "C1")  # code shows it in its box too
    assert column(grid, "code", TextFilter).box.value == "C1"
    grid.set_filter("due", (date(2026, 1, 2), None))
    assert column(grid, "due", DateRangeFilter).low.value == date(2026, 1, 2)
    assert grid.clear_filters() and grid.total == N and grid.where == {}
    assert column(grid, "status", ChoiceFilter).menu.label == "any"
    assert column(grid, "price", RangeFilter).low.value == ""


def test_static_filter_always_applies(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    # "cars without a manager": items without a supplier
    static = {"supplier": {"is_null": True}}
    grid = grids(published, static_filter=static, page_size=500)
    unassigned = ids_of(items, lambda r: r["supplier"] is None)
    assert [r["id"] for r in grid.rows] == unassigned and grid.total == len(unassigned)
    assert grid.where == static

    grid.set_filter("status", 0)
    both = ids_of(items, lambda r: r["supplier"] is None and r["status"] == 0)
    assert [r["id"] for r in grid.rows] == both and 0 < len(both) < len(unassigned)
    assert grid.where == {"and": [static, {"status": 0}]}
    grid.sort("price", descending=True)
    assert sorted(r["id"] for r in grid.rows) == both
    assert len(list(csv.DictReader(io.StringIO(grid.export_csv())))) == len(both)
    grid.clear_filters()
    assert grid.total == len(unassigned) and grid.where == static


def test_bad_filter_values_show_an_error_line_not_an_exception(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, page_size=10)
    before = grid.rows
    assert not grid.set_filter("qty", ("abc", None))
    assert grid.error == "Qty min: expected an integer, got 'abc'"
    assert grid.error_line.layout.display == "" and "Qty min" in grid.error_line.value
    assert grid.rows == before and grid.where == {}
    assert not grid.set_filter("qty", (1, 2, 3))
    assert grid.error == "Qty: expected a range (low, high), got (1, 2, 3)"
    assert not grid.set_filter("due", ("yesterday", None))  # each column keeps its error
    assert "; Due from: expected a date and time (ISO 8601), got 'yesterday'" in grid.error
    assert not grid.set_filter("status", "Pending")
    assert "; Status choice: 'Pending' is not one of the choices: 0 (New)" in grid.error
    grid.set_filter("due", None)
    grid.set_filter("status", None)
    assert not grid.set_filter("qty", ("abc", None))
    assert grid.error == "Qty min: expected an integer, got 'abc'"

    column(grid, "price", RangeFilter).high.value = "lots"  # typed into the box: same path
    assert "Price max: expected a number, got 'lots'" in grid.error
    grid.sort("qty")  # a good load keeps the filter errors on show
    assert "Qty min" in grid.error

    grid.set_filter("qty", (1, None))
    column(grid, "price", RangeFilter).high.value = ""
    assert grid.error == "" and grid.error_line.layout.display == "none"
    assert all(r["qty"] >= 1 for r in grid.rows)


def test_engine_errors_show_in_the_error_line(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, static_filter={"nope": 1})
    assert grid.rows == [] and "unknown field 'nope' of items" in grid.error
    assert grid.status.value == "no rows"

    grid = grids(published, order_by=["tags"])
    assert "cannot order by array field 'tags'" in grid.error
    grid.sort("qty")
    assert grid.error == "" and len(grid.rows) == 25

    with pytest.raises(KeyError, match="'nope' is not a column"):
        grid.set_filter("nope", 1)  # a page maker's mistake, not a viewer's


# -- columns, cells, rows -------------------------------------------------------------------


def test_the_column_chooser_hides_a_column(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published)
    assert grid.columns == list(grid.available_columns) and "qty" in grid.columns
    assert "tags" not in grid.columns and "extra" not in grid.columns  # not shown by default
    cells = grid.body.children[0].children[1]
    assert "abg-col-qty" in cells.value

    grid.chooser.value = tuple(c for c in grid.available_columns if c != "qty")
    assert "qty" not in grid.columns
    assert grid.sort_buttons["qty"].layout.display == "none"
    assert "abg-col-qty" not in cells.value and "abg-col-code" in cells.value

    grid.columns = ["code", "qty"]
    assert grid.chooser.value == ("code", "qty")
    assert grid.sort_buttons["qty"].layout.display == "" and "abg-col-price" not in cells.value
    with pytest.raises(TraitError, match="unknown columns"):
        grid.columns = ["code", "nope"]


def test_chosen_columns_and_their_cells(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, columns=["code", "notes", "status", "due", "active", "supplier"])
    assert grid.available_columns == ("code", "notes", "status", "due", "active", "supplier")
    assert set(grid.rows[0]) == {"id", *grid.available_columns}
    row = grid.body.children[1].children[1].value  # the second item: i = 1
    assert "&lt;b&gt;bold&lt;/b&gt;" in row and "<b>" not in row  # escaped
    assert ">Open<" in row  # status 1 by its label
    assert ">2026-01-02T10:00:00+00:00<" in row  # no microseconds
    assert ">\u2713<" in row  # active
    assert "#2 Bolt" in row  # reference: id and label


def test_cell_text_by_type() -> None:
    enum = FieldDef(type="enum", choices={0: "New", 1: "Open"})
    moment = datetime(2026, 1, 2, 3, 4, 5, 678, UTC)
    assert cell_text(enum, 1) == "Open" and cell_text(enum, 9) == "9"
    assert cell_text(FieldDef(type="datetime"), moment) == "2026-01-02T03:04:05+00:00"
    assert cell_text(FieldDef(type="time"), clock(1, 2, 3, 4)) == "01:02:03"
    assert cell_text(FieldDef(type="boolean"), False) == "\u2717"
    assert cell_text(FieldDef(type="reference", to="x"), 3) == "#3"
    assert cell_text(FieldDef(type="array", of="string"), ["a", "b"]) == '["a", "b"]'
    assert cell_text(FieldDef(type="string"), None) == ""
    long = cell_html(FieldDef(type="text"), "<" * 500, "notes", 220)
    assert "&lt;" * 79 + "\u2026</div>" in long and 'title="' + "&lt;" * 500 in long


def test_row_click_passes_the_whole_record(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    clicked: list[Record] = []
    grid = grids(published, columns=["code", "qty"], on_row_click=clicked.append)
    grid.next_page()
    record = grid.click_row(3)
    assert record == clicked[0] == published["items"].get(grid.rows[3]["id"])
    assert record is not None and "version" in record and "tags" in record
    assert grid.selected_id == grid.rows[3]["id"]

    grid.body.children[4].children[0].click()  # the row's "Open" button
    assert clicked[1]["id"] == grid.rows[4]["id"]
    with pytest.raises(IndexError):
        grid.click_row(25)

    gone = grid.rows[0]["id"]
    published["items"].delete(gone)
    assert grid.click_row(0) is None and len(clicked) == 2
    assert f"items record {gone} does not exist" in grid.error
    assert gone not in [r["id"] for r in grid.rows]


def test_a_failing_row_action_shows_in_the_error_line(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    def broken(record: Record) -> None:
        raise RuntimeError("boom")

    grid = grids(published, on_row_click=broken)
    grid.body.children[0].children[0].click()
    assert grid.error == "The row action failed (RuntimeError); the kernel log has the details."


# -- export -------------------------------------------------------------------------------


def test_export_csv_has_a_header_and_exactly_the_filtered_rows(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, page_size=10)
    grid.set_filter("price", (None, 60))
    text = grid.export_csv()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0].startswith("id,created_at,")
    expected = ids_of(items, lambda r: r["price"] is not None and r["price"] <= 60)
    assert [int(r["id"]) for r in rows] == expected and len(expected) > grid.page_size

    url = grid.export()
    assert url is not None and url.startswith("data:text/csv;charset=utf-8;base64,")
    assert base64.b64decode(url.split(",", 1)[1]).decode() == text
    assert 'download="items.csv"' in grid.export_link.value

    grid.export_inline_limit = 100  # big exports go to the file store
    grid.download_url = "/base/appbook/api/files/{id}"
    url = grid.export()
    assert url is not None and url.startswith("/base/appbook/api/files/")
    file_id = url.rsplit("/", 1)[1]
    assert published.files.get(file_id).decode() == text
    assert published.files.stat(file_id).name == "items.csv"

    grid.set_filter("code", "no such code")
    grid.export_button.click()
    assert list(csv.DictReader(io.StringIO(grid.export_csv()))) == []
    assert grid.error == ""


# -- live updates -------------------------------------------------------------------------

CHILD = """
import sys
from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook

url, home = sys.argv[1], sys.argv[2]
config = EngineConfig.from_values(home=home, database_url=url, redis_url="")
with Appbook(config, actor="someone-else") as app:
    app["items"].create({"code": "ZLIVE", "qty": 7})
"""


@pytest.mark.slow
def test_live_grid_shows_a_record_another_process_created(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid], tmp_path: Path
) -> None:
    grid = grids(published, order_by=["-id"], live=True)
    grid.next_page()  # live refreshes keep the page the viewer is on
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", CHILD, published.config.database_url, str(tmp_path / "child")],
        check=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert wait_for(grid, lambda: grid.total == N + 1), "no refresh within 5 s"
    assert grid.page == 1 and grid.rows[0]["id"] == items[-26]["id"]
    assert grid.first_page() and grid.rows[0]["code"] == "ZLIVE"


def test_live_refreshes_coalesce_bursts_and_stop_on_close(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published, order_by=["-id"], live=True)
    before = grid.revision
    start = time.monotonic()
    for i in range(40):
        published["items"].create({"code": f"B{i:02d}"})
    assert wait_for(grid, lambda: grid.total == N + 40)
    elapsed = time.monotonic() - start
    refreshes = grid.revision - before
    assert 1 <= refreshes <= 2 + elapsed / 0.25, (refreshes, elapsed)
    assert grid.rows[0]["code"] == "B39"

    threads = [t for t in threading.enumerate() if t.name == "appbook-live-items"]
    assert len(threads) == 1
    grid.close()
    assert not threads[0].is_alive()
    published["items"].create({"code": "AFTER"})  # nobody listens any more
    assert grid.total == N + 40


def test_live_can_be_switched_on_and_off(
    published: Appbook, items: list[Record], grids: Callable[..., DataGrid]
) -> None:
    grid = grids(published)
    grid.live = True
    published["items"].create({"code": "ON1"})
    assert wait_for(grid, lambda: grid.total == N + 1)
    grid.live = False
    assert not [t for t in threading.enumerate() if t.name == "appbook-grid-items"]
