"""The list view on SQLite and PostgreSQL: items rendered from the template, paged with the
engine's cursor, buttons passing whole records to on_select, live reloads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from appbook.kernels.ui.listview import ListView
from appbook.server.engine import Appbook
from appbook.server.errors import QueryError

CONTACTS = """
name: contacts
fields:
  name:  {type: string, required: true}
  city:  {type: string}
  kind:  {type: enum, choices: {c: Customer, s: Supplier}}
  vip:   {type: boolean}
  notes: {type: text}
"""
N = 23

Record = dict[str, Any]


@pytest.fixture
def contacts(app: Appbook) -> Appbook:
    app.publish_texts({"contacts.component.yaml": CONTACTS})
    app["contacts"].import_rows(
        {
            "name": f"<Name {i:02d}>",
            "city": None if i % 5 == 0 else f"City {i % 3}",
            "kind": "cs"[i % 2],
            "vip": i % 4 == 0,
        }
        for i in range(N)
    )
    return app


@pytest.fixture
def lists() -> Iterator[Callable[..., ListView]]:
    """Make lists that are closed (live threads stopped) after the test."""
    made: list[ListView] = []

    def make(app: Appbook, *args: Any, **kwargs: Any) -> ListView:
        view = ListView(app, "contacts", *args, **kwargs)
        made.append(view)
        return view

    yield make
    for view in made:
        view.close()


def shown(view: ListView) -> list[str]:
    """The texts of the visible items."""
    rows = view.children[0].children
    return [t.value for t, r in zip(view.item_texts, rows, strict=True) if r.layout.display == ""]


def test_items_follow_the_template(contacts: Appbook, lists: Callable[..., ListView]) -> None:
    view = lists(contacts, "name", ["kind", "city", "vip"], page_size=5)
    assert [r["name"] for r in view.items] == [f"<Name {i:02d}>" for i in range(5)]
    assert set(view.items[0]) == {"id", "name", "kind", "city", "vip"}
    texts = shown(view)
    assert len(texts) == 5
    assert ">&lt;Name 00&gt;</div>" in texts[0]  # escaped title
    assert ">Customer \u00b7 \u2713</div>" in texts[0]  # no city: left out of the subtitle
    assert ">Supplier \u00b7 City 1 \u00b7 \u2717</div>" in texts[1]  # enum label, not 's'
    assert view.page_label.value == "items 1\u20135 of 23"

    view = lists(contacts, "city", "name", where={"kind": "s"}, order_by="-name", page_size=3)
    assert [r["name"] for r in view.items] == ["<Name 21>", "<Name 19>", "<Name 17>"]
    assert ">#" in shown(lists(contacts, "city", where={"name": "<Name 00>"}))[0]  # no title


def test_paging_covers_every_record_once(contacts: Appbook, lists: Callable[..., ListView]) -> None:
    view = lists(contacts, "name", page_size=10)
    prev, nxt = view.pager_buttons
    assert prev.disabled and not nxt.disabled and view.total == N
    pages = [[r["id"] for r in view.items]]
    while not nxt.disabled:
        nxt.click()
        pages.append([r["id"] for r in view.items])
    assert [len(p) for p in pages] == [10, 10, 3] and view.page == 2
    assert [i for p in pages for i in p] == [r["id"] for r in contacts["contacts"].query(limit=100)]
    assert len(shown(view)) == 3 and view.page_label.value == "items 21\u201323 of 23"
    assert not view.next_page()
    prev.click()
    assert [r["id"] for r in view.items] == pages[1] and view.page == 1
    assert view.prev_page() and not view.prev_page() and prev.disabled


def test_a_click_passes_the_whole_record(contacts: Appbook, lists: Callable[..., ListView]) -> None:
    chosen: list[Record] = []
    view = lists(contacts, "name", "city", page_size=5, on_select=chosen.append)
    view.next_page()
    view.item_buttons[2].click()
    expected = contacts["contacts"].get(view.items[2]["id"])
    assert chosen == [expected] and "notes" in chosen[0] and "version" in chosen[0]
    assert view.selected_id == expected["id"] and expected["name"] == "<Name 07>"
    with pytest.raises(IndexError):
        view.select(5)

    gone = view.items[0]["id"]
    contacts["contacts"].delete(gone)
    assert view.select(0) is None and len(chosen) == 1
    assert f"contacts record {gone} does not exist" in view.status.text
    assert gone not in [r["id"] for r in view.items] and view.total == N - 1


def test_failures_show_in_the_status_line(
    contacts: Appbook, lists: Callable[..., ListView]
) -> None:
    def broken(record: Record) -> None:
        raise RuntimeError("boom")

    view = lists(contacts, "name", on_select=broken)
    view.item_buttons[0].click()
    assert (
        view.status.text == "The selection failed (RuntimeError); the kernel log has the details."
    )

    view = lists(contacts, "name", where={"vip": "often"})
    assert view.items == [] and view.status.kind == "error" and "vip" in view.status.text
    assert shown(view) == [] and view.page_label.value == "no items"


def test_bad_configuration_fails_early(contacts: Appbook) -> None:
    with pytest.raises(QueryError, match="title: unknown field 'nope' of contacts"):
        ListView(contacts, "contacts", "nope")
    with pytest.raises(QueryError, match="subtitle: unknown field 'town' of contacts"):
        ListView(contacts, "contacts", "name", ["city", "town"])
    with pytest.raises(ValueError, match="page_size: expected 1 to 1,000 items, got 0"):
        ListView(contacts, "contacts", "name", page_size=0)


def test_a_live_list_shows_new_records(contacts: Appbook, lists: Callable[..., ListView]) -> None:
    view = lists(contacts, "name", order_by="-id", page_size=5, live=True)
    loaded = threading.Event()
    view.observe(lambda _: loaded.set(), "revision")
    contacts["contacts"].create({"name": "Newcomer"})
    deadline = time.monotonic() + 5
    while view.total != N + 1 and loaded.wait(deadline - time.monotonic()):
        loaded.clear()
    assert view.total == N + 1 and view.items[0]["name"] == "Newcomer"
    assert ">Newcomer</div>" in shown(view)[0]
