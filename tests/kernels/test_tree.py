"""The tree view on SQLite and PostgreSQL: roots first, children read only when a node is
expanded, whole records passed to on_select, refused parent fields, live reloads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from appbook.kernels.ui.tree import TreeView
from appbook.server.engine import Appbook
from appbook.server.errors import QueryError

CATEGORIES = """
name: categories
fields:
  name:   {type: string, required: true}
  kind:   {type: enum, choices: {0: Plain, 1: Special}}
  parent: {type: reference, to: categories}
"""
ITEMS = """
name: items
fields:
  name:     {type: string}
  category: {type: reference, to: categories}
"""
TREE = {  # name -> parent name
    "A": None, "B": None, "C": None,
    "A1": "A", "A2": "A", "A1a": "A1", "A1b": "A1",
    "C1": "C", "C2": "C", "C3": "C", "C4": "C", "C5": "C",
}  # fmt: skip

Record = dict[str, Any]


@pytest.fixture
def ids(app: Appbook) -> dict[str, int]:
    """The categories of TREE (created parents first), by name."""
    app.publish_texts({"categories.component.yaml": CATEGORIES, "items.component.yaml": ITEMS})
    made: dict[str, int] = {}
    for name, parent in TREE.items():
        values = {"name": name, "parent": made.get(parent or ""), "kind": int(name == "C3")}
        made[name] = app["categories"].create(values)["id"]
    return made


@pytest.fixture
def trees() -> Iterator[Callable[..., TreeView]]:
    """Make trees that are closed (live threads stopped) after the test."""
    made: list[TreeView] = []

    def make(app: Appbook, *args: Any, **kwargs: Any) -> TreeView:
        tree = TreeView(app, "categories", "parent", "name", *args, **kwargs)
        made.append(tree)
        return tree

    yield make
    for tree in made:
        tree.close()


def outline(tree: TreeView) -> list[str]:
    """The shown nodes, indented two spaces per level."""
    return ["  " * depth + record["name"] for depth, record in tree.visible]


def test_roots_first_and_children_read_on_expand(
    app: Appbook, ids: dict[str, int], trees: Callable[..., TreeView]
) -> None:
    tree = trees(app)
    reads: list[Any] = []
    query = tree.handle.query

    def spy(where: Any = None, **kwargs: Any) -> Any:
        reads.append(where)
        return query(where, **kwargs)

    tree.handle.query = spy  # type: ignore[method-assign]
    assert outline(tree) == ["A", "B", "C"] and tree.children_of(ids["A"]) == []
    toggles = tree.toggle_buttons
    assert [toggles[ids[n]].description for n in "ABC"] == ["\u25b8", "\u00b7", "\u25b8"]
    assert toggles[ids["B"]].disabled and not toggles[ids["A"]].disabled  # B has no children

    toggles[ids["A"]].click()
    assert reads == [{"parent": ids["A"]}]  # one level, read when expanded
    assert outline(tree) == ["A", "  A1", "  A2", "B", "C"]
    assert tree.toggle_buttons[ids["A"]].description == "\u25be"
    assert tree.toggle_buttons[ids["A2"]].disabled and tree.expanded == {ids["A"]}
    assert tree.expand(ids["A1"])
    assert outline(tree) == ["A", "  A1", "    A1a", "    A1b", "  A2", "B", "C"]
    assert [r["name"] for r in tree.children_of(ids["A1"])] == ["A1a", "A1b"]
    assert tree.body.children[2].layout.margin == "0 0 0 48px"

    tree.toggle_buttons[ids["A"]].click()  # collapse: the subtree is forgotten
    assert outline(tree) == ["A", "B", "C"] and tree.expanded == set()
    with pytest.raises(KeyError, match=f"record {ids['A1']} is not shown"):
        tree.expand(ids["A1"])
    tree.toggle(ids["A"])
    assert outline(tree) == ["A", "  A1", "  A2", "B", "C"] and len(reads) == 3  # read again


def test_a_click_on_a_label_selects_the_whole_record(
    app: Appbook, ids: dict[str, int], trees: Callable[..., TreeView]
) -> None:
    chosen: list[Record] = []
    tree = trees(app, on_select=chosen.append)
    tree.expand(ids["C"])
    button = tree.label_buttons[ids["C3"]]
    assert button.description == "C3"
    button.click()
    assert chosen == [app["categories"].get(ids["C3"])] and chosen[0]["kind"] == 1
    assert tree.selected_id == ids["C3"] and button.button_style == "info"
    tree.label_buttons[ids["C"]].click()
    assert button.button_style == "" and chosen[-1]["name"] == "C"

    app["categories"].delete(ids["C5"])
    assert tree.select(ids["C5"]) is None and len(chosen) == 2
    assert f"categories record {ids['C5']} does not exist" in tree.status.text
    assert "C5" not in [r["name"] for _, r in tree.visible]


def test_levels_are_limited_filtered_and_ordered(
    app: Appbook, ids: dict[str, int], trees: Callable[..., TreeView]
) -> None:
    tree = trees(app, limit=3, order_by="-name")
    assert outline(tree) == ["C", "B", "A"]
    tree.expand(ids["C"])
    assert outline(tree) == ["C", "  C5", "  C4", "  C3", "B", "A"]
    assert "\u2026 2 more" in tree.body.children[4].value  # after C's children

    tree = trees(app, where={"name": {"startswith": "C"}})  # every level
    assert outline(tree) == ["C"]
    tree.expand(ids["C"])
    assert outline(tree) == ["C", "  C1", "  C2", "  C3", "  C4", "  C5"]

    tree = trees(app, where={"kind": 0})
    tree.expand(ids["C"])
    assert "C3" not in outline(tree) and len(outline(tree)) == 7


def test_a_parent_that_is_not_a_self_reference_is_refused(
    app: Appbook, ids: dict[str, int]
) -> None:
    with pytest.raises(
        ValueError,
        match="parent: 'category' must be a reference to items itself, it is a reference to categories",
    ):
        TreeView(app, "items", "category", "name")
    with pytest.raises(
        ValueError,
        match="parent: 'name' must be a reference to categories itself, it is of type string",
    ):
        TreeView(app, "categories", "name", "name")
    with pytest.raises(QueryError, match="parent: unknown field 'up' of categories"):
        TreeView(app, "categories", "up", "name")
    with pytest.raises(QueryError, match="label: unknown field 'title' of categories"):
        TreeView(app, "categories", "parent", "title")


def test_engine_errors_show_in_the_status_line(
    app: Appbook, ids: dict[str, int], trees: Callable[..., TreeView]
) -> None:
    tree = trees(app, where={"kind": "loud"})
    assert tree.visible == [] and tree.status.kind == "error" and "kind" in tree.status.text

    def broken(record: Record) -> None:
        raise RuntimeError("boom")

    tree = trees(app, on_select=broken)
    tree.label_buttons[ids["A"]].click()
    assert (
        tree.status.text == "The selection failed (RuntimeError); the kernel log has the details."
    )


def test_a_live_tree_reloads_the_shown_levels(
    app: Appbook, ids: dict[str, int], trees: Callable[..., TreeView]
) -> None:
    tree = trees(app, live=True)
    tree.expand(ids["A"])
    tree.expand(ids["A1"])
    loaded = threading.Event()
    tree.observe(lambda _: loaded.set(), "revision")
    app["categories"].create({"name": "A1c", "parent": ids["A1"]})
    app["categories"].create({"name": "B1", "parent": ids["B"]})
    expected = ["A", "  A1", "    A1a", "    A1b", "    A1c", "  A2", "B", "C"]

    def done() -> bool:
        return outline(tree) == expected and not tree.toggle_buttons[ids["B"]].disabled

    deadline = time.monotonic() + 5
    while not done() and loaded.wait(deadline - time.monotonic()):
        loaded.clear()
    assert outline(tree) == expected  # expanded nodes stay expanded
    assert not tree.toggle_buttons[ids["B"]].disabled  # B has a child now
