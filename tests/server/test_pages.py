"""Page definitions: shapes and references are checked at publish time, with lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appbook.server.definitions import load_directory, load_texts
from appbook.server.definitions.pages import CONTROL_KINDS
from appbook.server.errors import DefinitionError

EXAMPLES = Path(__file__).parent.parent.parent / "notebooks" / "examples"
BASE = """\
name: invoices
fields:
  number: {type: string}
  status: {type: enum, choices: {0: New, 1: Paid}}
pages:
"""


def problems(pages: str, extra: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_texts({"invoices.component.yaml": BASE + pages, **(extra or {})})
    return [str(p) for p in info.value.problems]


def test_example_pages_load() -> None:
    loaded = {item.definition.name: item.definition for item in load_directory(EXAMPLES)}
    pages = loaded["invoices"].pages
    assert pages is not None and set(pages) == {"all", "edit"}
    assert pages["all"].layout[0].kind == "grid"
    assert pages["edit"].params == ["id"]


def test_unknown_field_control_and_page_are_errors_with_lines() -> None:
    found = problems(
        """\
  edit:
    layout:
      - field: numbr
      - field: status
        control: wheel
      - button: {text: Go, action: {open_page: nowhere}}
      - grid: {columns: [number, colour], on_row_click: {open: {component: ghosts, page: x}}}
"""
    )
    assert (
        "invoices.component.yaml:8 pages.edit.layout[0].field: unknown field 'numbr' (fields: number, status)"
        in found
    )
    assert any(
        p.startswith(
            "invoices.component.yaml:10 pages.edit.layout[1].control: unknown control 'wheel'"
        )
        for p in found
    )
    assert (
        "invoices.component.yaml:11 pages.edit.layout[2].button.action.open_page: unknown page 'nowhere' (pages: edit)"
        in found
    )
    assert (
        "invoices.component.yaml:12 pages.edit.layout[3].grid.columns[1]: unknown field 'colour'"
        in found
    )
    assert (
        "invoices.component.yaml:12 pages.edit.layout[3].grid.on_row_click.open.component: unknown component 'ghosts'"
        in found
    )


def test_other_component_page_must_exist() -> None:
    other = (
        "name: managers\nfields:\n  name: {type: string}\npages:\n  grid: {layout: [{grid: {}}]}\n"
    )
    found = problems(
        "  all:\n    layout:\n      - button: {text: M, action: {open: {component: managers, page: list}}}\n",
        {"managers.component.yaml": other},
    )
    assert found == [
        "invoices.component.yaml:8 pages.all.layout[0].button.action.open.page: component 'managers' has no page 'list'"
    ]


@pytest.mark.parametrize(
    ("pages", "message"),
    [
        (
            "  all:\n    layout:\n      - {field: number, grid: {}}\n",
            "a layout node has exactly one of field, grid",
        ),
        ("  all:\n    layout:\n      - {title: nothing}\n", "(found: none)"),
        (
            "  all:\n    layout:\n      - button: {text: Go, action: explode}\n",
            "pages.all.layout[0].button.action",
        ),
        (
            "  all:\n    layout:\n      - grid: {page_size: 0}\n",
            "pages.all.layout[0].grid.page_size",
        ),
        (
            "  all:\n    layout:\n      - panel: {direction: diagonal, children: []}\n",
            "pages.all.layout[0].panel.direction",
        ),
        ("  all:\n    title: x\n", "pages.all.layout: is required"),
        (
            "  all:\n    layout:\n      - button: {text: Go, action: {open_page: all, params: {id: cell.x}}}\n",
            "parameters come from row.*",
        ),
        (
            "  all:\n    layout:\n      - {field: number, control: radio, colour: red}\n",
            "unknown option 'colour'",
        ),
    ],
)
def test_bad_pages_are_explained(pages: str, message: str) -> None:
    found = problems(pages)
    assert any(message in p for p in found), found


def test_control_kinds_match_the_widget_library() -> None:
    from appbook.kernels.ui import defaults

    assert set(defaults.CONTROL_KINDS) == set(CONTROL_KINDS)


def test_grid_filter_order_and_set_actions_name_known_fields() -> None:
    found = problems(
        """\
  all:
    layout:
      - grid:
          filter: {or: [{numbr: {eq: x}}, {status: 1}]}
          order_by: [-due]
      - button: {text: Pay, action: [{set: {paid: true}}, save, back]}
"""
    )
    assert any("layout[0].grid.filter.or[0].numbr: unknown field 'numbr'" in p for p in found)
    assert any("layout[0].grid.order_by[0]: unknown field 'due'" in p for p in found)
    assert any("layout[1].button.action[0].set.paid: unknown field 'paid'" in p for p in found)
    assert all(":" in p.split(" ")[0] for p in found)  # file:line on each


def test_page_order_survives_publication(app: Any) -> None:
    app.publish_texts(
        {
            "invoices.component.yaml": BASE
            + """\
  zz_home:
    layout: [{grid: {columns: [number]}}]
  a_second:
    layout: [{field: number}]
  middle_third:
    layout: [{field: status}]
"""
        }
    )
    app.registry.refresh(force=True)
    pages = app.registry.get("invoices").definition.pages
    assert list(pages) == ["zz_home", "a_second", "middle_third"]  # JSONB would sort keys
