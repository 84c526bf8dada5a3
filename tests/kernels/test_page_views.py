"""Charts, pivots, lists and trees declared in pages: checked at publish, rendered, live."""

from __future__ import annotations

import pytest

from appbook.kernels.ui.chart import Chart
from appbook.kernels.ui.listview import ListView
from appbook.kernels.ui.page import show
from appbook.kernels.ui.pivot import PivotGrid
from appbook.kernels.ui.tree import TreeView
from appbook.server.definitions import load_texts
from appbook.server.engine import Appbook
from appbook.server.errors import DefinitionError

TASKS = """\
name: tasks
fields:
  title: {type: string, required: true}
  team: {type: enum, choices: {red: Red team, blue: Blue team}}
  state: {type: enum, choices: {0: Open, 1: Done}, default: 0}
  hours: {type: number}
  parent: {type: reference, to: tasks}
pages:
  board:
    title: Board
    layout:
      - chart: {kind: bar, x: team, y: hours, aggregate: sum}
        title: Hours by team
      - pivot: {rows: team, columns: state, aggregate: count}
      - list_view:
          title: title
          subtitle: [team, hours]
          order_by: [title]
          on_select: {open_page: edit, params: {id: row.id}}
      - tree:
          parent: parent
          label: title
          on_select: {open_page: edit, params: {id: row.id}}
  edit:
    params: [id]
    layout:
      - field: title
      - field: hours
      - button: {text: Save, action: [save, back]}
"""


@pytest.fixture
def tasks(app: Appbook) -> Appbook:
    app.publish_texts({"tasks.component.yaml": TASKS})
    handle = app["tasks"]
    plan = handle.create({"title": "Plan", "team": "red", "hours": 2})
    handle.create({"title": "Build", "team": "blue", "hours": 5, "parent": plan["id"]})
    handle.create({"title": "Test", "team": "blue", "hours": 3, "state": 1, "parent": plan["id"]})
    return app


def test_views_render_from_the_page_and_open_records(tasks: Appbook) -> None:
    shell = show("tasks", "board", app=tasks, live=False)
    try:
        page = shell.current
        chart, pivot, listing, tree = page.views
        assert isinstance(chart, Chart) and isinstance(pivot, PivotGrid)
        assert isinstance(listing, ListView) and isinstance(tree, TreeView)
        assert dict(zip(chart.labels, chart.values, strict=True)) == {
            "Red team": 2.0,
            "Blue team": 8.0,
        }
        assert pivot.cells[("blue", 0)] == 1 and pivot.grand_total == 3
        assert [item["title"] for item in listing.items] == ["Build", "Plan", "Test"]
        assert [(d, r["title"]) for d, r in tree.visible] == [(0, "Plan")]  # until expanded
        tree.expand(tree.visible[0][1]["id"])
        assert sorted((d, r["title"]) for d, r in tree.visible) == [
            (0, "Plan"),
            (1, "Build"),
            (1, "Test"),
        ]
        listing.select(2)  # "Test": on_select opens its page
        edit = shell.current
        assert edit.name == "edit" and edit.controls["title"].value == "Test"
        edit.controls["hours"].input.value = "13"
        edit.run(edit.page.layout[2].button.action)  # [save, back]
        assert shell.current is page
        # back on the board, the views show the saved hours (refreshed after the save)
        assert dict(zip(chart.labels, chart.values, strict=True))["Blue team"] == 18.0
    finally:
        shell.close()


def test_view_fields_and_tree_parents_are_checked_at_publish() -> None:
    bad = TASKS.replace("x: team, y: hours", "x: tema, y: hours").replace(
        "rows: team, columns: state", "rows: team, columns: stat"
    )
    bad = bad.replace("subtitle: [team, hours]", "subtitle: [team, houres]")
    bad = bad.replace("parent: parent\n", "parent: team\n")
    with pytest.raises(DefinitionError) as info:
        load_texts({"tasks.component.yaml": bad})
    found = "\n".join(str(p) for p in info.value.problems)
    assert "layout[0].chart.x: unknown field 'tema'" in found
    assert "layout[1].pivot.columns: unknown field 'stat'" in found
    assert "layout[2].list_view.subtitle[1]: unknown field 'houres'" in found
    assert "layout[3].tree.parent: 'team' is not a reference to tasks itself" in found
    assert all(p.split(" ")[0].count(":") >= 1 for p in found.splitlines())  # file:line


def test_a_button_runs_a_workflow_on_the_page_record(app: Appbook) -> None:
    flow = (
        TASKS
        + """\
workflows:
  estimate:
    stages:
      - name: s
        steps:
          - {name: big, if: "record.hours > 4", then: mark, else: skip}
          - {name: mark, update_field: {field: team, value: red}, next: skip}
          - {name: skip, finish: {}}
"""
    )
    flow = flow.replace(
        "      - button: {text: Save, action: [save, back]}",
        "      - button: {text: Save, action: [save, back]}\n"
        "      - button: {text: Estimate, action: {run_workflow: estimate}}",
    )
    app.publish_texts({"tasks.component.yaml": flow})
    task = app["tasks"].create({"title": "Big one", "team": "blue", "hours": 8})
    shell = show("tasks", "edit", app=app, live=False, id=task["id"])
    try:
        page = shell.current
        page.run(page.page.layout[3].button.action)
        assert page.status.text == "Workflow estimate: succeeded."
        assert app["tasks"].get(task["id"])["team"] == "red"
    finally:
        shell.close()
