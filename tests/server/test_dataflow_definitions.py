"""Dataflow definitions checked at publish: each kind's good configuration loads; each bad
one is a problem with file, line and path (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from appbook.server.definitions import load_directory, load_texts
from appbook.server.errors import DefinitionError

MAKERS = """\
name: makers
fields:
  name: {type: string, unique: true}
"""

HEAD = """\
name: cars
fields:
  plate: {type: string}
  price: {type: number}
  maker: {type: reference, to: makers}
  tags: {type: array, of: string}
pages:
  edit:
    layout:
      - {field: plate}
workflows:
  review:
    stages:
      - name: s
        steps:
          - {name: end, finish: {}}
dataflows:
  other:
    stages:
      - name: s
        steps:
          - {name: form, action_model: {}}
  flow:
    stages:
      - name: main
        steps:
"""

GOOD = [
    "{name: form, action_model: {}}",
    "{name: blank, empty_model: {component: makers}}",
    '{name: one, get_record: {id: "inputs.id"}}',
    '{name: q, query: {where: {price: {gt: {$expr: "inputs.min"}}}, order_by: [-price], limit: 5}}',
    '{name: m, map: {fields: {p: "item.price * 2"}, keep: true}}',
    '{name: f, filter: "item.price > 1"}',
    "{name: j, join: {with: q, on: {maker: id}, type: left, into: other}}",
    '{name: l, lookup: {component: makers, value: "item.maker", into: maker_record}}',
    '{name: g, group_by: {keys: [maker], metrics: {n: count, total: "sum(price)"}}}',
    "{name: d, distinct: {fields: [maker]}}",
    "{name: e, expand: {field: tags, as: tag}}",
    '{name: c, calculate: {fields: {n: "items | length"}}}',
    "{name: call, dataflow: {name: other, per_item: true}}",
    '{name: mk, create: {component: makers, fields: {name: "item.plate"}}}',
    '{name: up, update: {key: plate, fields: {price: "item.price"}, mark_for_deletion: "item.gone"}}',
    '{name: du, deferred_update: {fields: {price: "item.price + 1"}}}',
    "{name: ad, apply_deferred: {chunk_size: 100}}",
    '{name: del, delete: {id: "item.id"}}',
    "{name: wf, run_workflow: {workflow: review}}",
    '{name: r, respond: {value: "items | length"}}',
    '{name: fa, form_action: {action: open_page, page: edit, params: {id: "item.id"}}}',
    "{name: fr, form_action: {action: refresh}}",
]


def flow(*steps: str) -> dict[str, str]:
    body = "".join(f"          - {s}\n" for s in steps)
    return {"makers.component.yaml": MAKERS, "cars.component.yaml": HEAD + body}


def problems(*steps: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_texts(flow(*steps))
    return [str(p) for p in info.value.problems]


def test_every_available_kind_loads_and_round_trips() -> None:
    loaded = load_texts(flow(*GOOD))
    cars = next(i.definition for i in loaded if i.definition.name == "cars")
    steps = [s for _, _, s in cars.dataflows["flow"].steps()]  # type: ignore[index]
    assert [s.name for s in steps][:3] == ["form", "blank", "one"]
    from appbook.server.definitions.models import ComponentDef

    assert ComponentDef.model_validate(cars.snapshot()) == cars


LINE = 27  # the first step of "flow" in HEAD + steps


@pytest.mark.parametrize(
    ("steps", "offset", "path", "message"),
    [
        (["{name: m, map: {fields: {a: '1'}}}"], 0, "map", "first step must be an input step"),
        (
            ["{name: a, action_model: {}}", "{name: b, map: {fields: {x: 'item.'}}}"],
            1,
            "map.fields.x",
            "not a valid expression",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, filter: 'x', source: zz}"],
            1,
            "source",
            "'zz' is not a step before this one",
        ),
        (
            [
                "{name: a, action_model: {}}",
                "{name: b, join: {with: c, on: {x: y}}}",
                "{name: c, action_model: {}}",
            ],
            1,
            "join.with",
            "'c' is not a step before this one",
        ),
        (["{name: a, action_model: {}, source: a}"], 0, "source", "read no source"),
        (["{name: a, query: {component: nope}}"], 0, "query.component", "unknown component"),
        (["{name: a, query: {where: {colour: red}}}"], 0, "query.where.colour", "unknown field"),
        (["{name: a, query: {order_by: [-nope]}}"], 0, "query.order_by[0]", "unknown field"),
        (["{name: a, query: {chunk_size: 0}}"], 0, "query.chunk_size", "greater than or equal"),
        (
            [
                "{name: a, action_model: {}}",
                "{name: b, lookup: {component: makers, by: x, value: 'item.maker', into: m}}",
            ],
            1,
            "lookup.by",
            "unknown field 'x' of makers",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, group_by: {metrics: {n: 'median(price)'}}}"],
            1,
            "group_by.metrics.n",
            "expected count or sum",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, expand: {}}"],
            1,
            "expand.field",
            "is required",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, dataflow: {name: nope}}"],
            1,
            "dataflow.name",
            "unknown dataflow 'nope' of cars",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, create: {fields: {colour: '1'}}}"],
            1,
            "create.fields.colour",
            "unknown field 'colour' of cars",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, update: {id: '1', key: plate}}"],
            1,
            "update",
            "by id or by key, not both",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, deferred_update: {}}"],
            1,
            "deferred_update",
            "apply_deferred step after them",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, run_workflow: {workflow: nope}}"],
            1,
            "run_workflow.workflow",
            "unknown workflow 'nope'",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, respond: {value: '1 +'}}"],
            1,
            "respond.value",
            "not a valid expression",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, form_action: {action: open_page, page: x}}"],
            1,
            "form_action.page",
            "unknown page 'x' of cars",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, form_action: {action: open_file}}"],
            1,
            "form_action",
            "open_file needs file",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, form_action: {action: jump}}"],
            1,
            "form_action.action",
            "input should be",
        ),
        (
            ["{name: a, action_model: {}}", "{name: b, script: {function: f}}"],
            1,
            "script.function",
            None,
        ),  # from texts there is no folder: checked at run time (see the folder test)
        (["{name: a, action_model: {}}", "{name: a, filter: 'true'}"], 1, "name", "used twice"),
        (["{name: a, action_model: {}, query: {}}"], 0, "", "exactly one kind key"),
        (["{name: a, get_record: {}}"], 0, "get_record.id", "is required"),
    ],
)
def test_bad_configurations_name_file_line_and_path(
    steps: list[str], offset: int, path: str, message: str | None
) -> None:
    if message is None:
        load_texts(flow(*steps))
        return
    found = problems(*steps)
    where = f"cars.component.yaml:{LINE + offset} dataflows.flow.stages[0].steps[{offset}]"
    wanted = f"{where}.{path}" if path else where
    assert any(p.startswith(wanted) and message in p for p in found), found


def test_export_file_and_opening_it_are_checked() -> None:
    load_texts(
        flow(
            "{name: a, action_model: {}}",
            '{name: b, export_file: {name: "x-{{ inputs.t }}.csv"}}',
            "{name: c, form_action: {action: open_file, export: b}}",
        )
    )
    found = problems(
        "{name: a, action_model: {}}",
        "{name: b, export_file: {name: x.xlsx, format: xlsx}}",
        "{name: c, form_action: {action: open_file, export: a}}",
        '{name: d, export_file: {name: "{{"}}',
    )
    where = "cars.component.yaml:{} dataflows.flow.stages[0].steps[{}]"
    assert not any(".steps[1]." in p for p in found), found  # xlsx exports are available
    assert any(
        p.startswith(f"{where.format(LINE + 2, 2)}.form_action.export: not an") for p in found
    )
    assert any(p.startswith(f"{where.format(LINE + 3, 3)}.export_file.name: ") for p in found)


def test_outside_kinds_check_their_templates() -> None:
    good = [
        '{name: a, http_get: {url: "https://x.example/{{ inputs.p }}", secret: api}}',
        '{name: b, http_call: {method: PUT, url: "https://x.example", body: {n: "{{ item.n }}"}}}',
        '{name: c, notify: {email: {to: "role:managers", subject: "{{ item.n }}"}}}',
        '{name: d, notify: {webhook: {url: "https://x.example"}}}',
    ]
    load_texts(flow(*good))
    found = problems(
        '{name: a, http_get: {url: "{{ inputs.p", headers: {X: "{{ 1 +"}}}',
        '{name: c, notify: {email: {to: "x", subject: "{% if %}"}}}',
    )
    prefix = f"cars.component.yaml:{LINE} dataflows.flow.stages[0].steps[0].http_get"
    assert any(p.startswith(f"{prefix}.url: ") and "not a valid template" in p for p in found)
    assert any(p.startswith(f"{prefix}.headers.X: ") for p in found), found
    assert any(".steps[1].notify.email.subject: " in p for p in found), found
    pdf = problems(
        "{name: a, action_model: {}}", "{name: b, render_template: {template: x, to: pdf}}"
    )
    assert any(".steps[1].render_template.name: to: pdf needs name" in p for p in pdf), pdf
    bad = problems("{name: a, action_model: {}}", '{name: b, render_template: {template: "{{"}}')
    assert any(".steps[1].render_template.template: " in p for p in bad), bad
    shape = problems("{name: a, action_model: {}}", "{name: d, notify: {}}")
    assert any(".steps[1].notify: " in p and "exactly one of email or webhook" in p for p in shape)


def test_script_functions_are_checked_in_the_script_beside(tmp_path: Path) -> None:
    for name, text in flow(
        "{name: a, action_model: {}}", "{name: b, script: {function: go}}"
    ).items():
        (tmp_path / name).write_text(text)
    with pytest.raises(DefinitionError, match=r"script steps need cars\.py beside"):
        load_directory(tmp_path)
    (tmp_path / "cars.py").write_text("def other(items):\n    return items\n")
    with pytest.raises(DefinitionError) as info:
        load_directory(tmp_path)
    assert f"cars.component.yaml:{LINE + 1}" in str(info.value)
    assert "no function 'go' in cars.py (functions: other)" in str(info.value)
    (tmp_path / "cars.py").write_text("x = 1\n\nasync def go(items):\n    return items\n")
    with pytest.raises(DefinitionError, match=r"'go' in cars\.py:3 is async; call plain"):
        load_directory(tmp_path)
    (tmp_path / "cars.py").write_text("def go(items):\n    return items +\n")
    with pytest.raises(DefinitionError, match=r"cars\.py line 2: invalid syntax"):
        load_directory(tmp_path)
    (tmp_path / "cars.py").write_text("def go(items):\n    return items\n")
    assert len(load_directory(tmp_path)) == 2
