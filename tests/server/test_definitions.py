"""Component definition files: parsing, every rule, and errors with file, line and path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appbook.server.definitions import (
    FIELD_TYPES,
    from_snapshot,
    json_schema,
    load_directory,
    load_texts,
)
from appbook.server.errors import DefinitionError

FIXTURES = Path(__file__).parent.parent / "fixtures"

INVOICES = """\
name: invoices
title: Invoice Inventory
fields:
  number:   {type: string, title: Invoice Number, required: true, unique: true, min_length: 2, indexed: true}
  title:    {type: string, required: true, max_length: 200}
  amount:   {type: number, min: 0}
  due_date: {type: datetime}
  status:   {type: enum, choices: {0: Under Review, 1: Accepted for Payment, 2: Rejected, 3: Paid, 4: Overdue}, default: 0}
"""


def problems(texts: dict[str, str]) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_texts(texts)
    return [str(p) for p in info.value.problems]


def test_the_brief_invoice_definition_loads() -> None:
    (loaded,) = load_texts({"invoices.component.yaml": INVOICES})
    defn = loaded.definition
    assert defn.name == "invoices"
    assert list(defn.fields) == ["number", "title", "amount", "due_date", "status"]
    assert defn.fields["status"].choice_values() == [0, 1, 2, 3, 4]
    assert defn.fields["number"].unique and defn.fields["number"].min_length == 2


def test_fixture_covers_every_field_type() -> None:
    loaded = load_directory(FIXTURES / "all_types")
    types = {f.type for item in loaded for f in item.definition.fields.values()}
    assert types == set(FIELD_TYPES)


def test_error_names_file_line_path_and_reason() -> None:
    text = INVOICES.replace(
        "amount:   {type: number, min: 0}", "amount:   {type: number, min: zero}"
    )
    assert problems({"invoices.component.yaml": text}) == [
        'invoices.component.yaml:6 fields.amount.min: expected a number, got "zero"'
    ]


def test_every_error_in_a_file_is_reported_at_once() -> None:
    text = """\
name: invoices
fields:
  amount: {type: number,
           min: zero}
  due: {type: datetim}
  status:
    type: enum
    choices: {0: New, 1: Done}
    default: 7
  data: {type: json, unique: true}
  ref: {type: reference, to: nowhere}
  n: {type: integer, requird: true}
"""
    found = problems({"invoices.component.yaml": text})
    assert 'invoices.component.yaml:4 fields.amount.min: expected a number, got "zero"' in found
    assert any(
        p.startswith('invoices.component.yaml:5 fields.due.type: unknown field type "datetim"')
        for p in found
    )
    assert (
        "invoices.component.yaml:12 fields.n.requird: unknown option 'requird' (did you mean 'required'?)"
        in found
    )
    assert len(found) == 3  # shape errors stop the semantic checks of that file


def test_semantic_errors_are_all_reported_with_lines() -> None:
    text = """\
name: invoices
fields:
  status:
    type: enum
    choices: {0: New, 1: Done}
    default: 7
  data: {type: json, unique: true}
  ref: {type: reference, to: nowhere}
  code: {type: string, min: 3, min_length: 5, max_length: 2, pattern: "("}
  tags: {type: array}
  id: {type: integer}
  v: {type: string, virtual: true, indexed: true}
"""
    found = problems({"invoices.component.yaml": text})
    expected = [
        "invoices.component.yaml:6 fields.status.default: default 7 is not one of the choices: 0 (New), 1 (Done)",
        "invoices.component.yaml:7 fields.data.unique: json fields cannot be unique",
        "invoices.component.yaml:9 fields.code.min: not an option of string fields (only integer, number)",
        "invoices.component.yaml:9 fields.code.min_length: min_length (5) is greater than max_length (2)",
        "invoices.component.yaml:10 fields.tags.of: array fields need 'of': the type of their items",
        "invoices.component.yaml:11 fields.id: 'id' is a system field every record has; choose another name",
        "invoices.component.yaml:12 fields.v.virtual: virtual fields are not stored, so they cannot be unique or indexed",
        "invoices.component.yaml:8 fields.ref.to: unknown component 'nowhere' (known: invoices)",
    ]
    for line in expected:
        assert line in found
    assert any(
        p.startswith("invoices.component.yaml:9 fields.code.pattern: invalid regular expression")
        for p in found
    )


def test_duplicate_names_point_at_both_files() -> None:
    found = problems(
        {"a.component.yaml": "name: x\nfields: {}\n", "b.component.yaml": "name: x\nfields: {}\n"}
    )
    assert found == [
        "a.component.yaml:1 name: duplicate component name 'x' (in a.component.yaml, b.component.yaml)",
        "b.component.yaml:1 name: duplicate component name 'x' (in a.component.yaml, b.component.yaml)",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nfields:\n  a: [1\n", "x.component.yaml:4: invalid YAML"),
        ("", "x.component.yaml:1: expected a mapping with name and fields (empty file)"),
        ("name: Bad-Name\n", 'x.component.yaml:1 name: "Bad-Name" is not a valid name'),
        (
            "name: appbook_x\n",
            "x.component.yaml:1 name: names starting with 'appbook_' are reserved",
        ),
        ("fields: {}\n", "x.component.yaml:1 name: is required"),
        (
            "name: x\nfields:\n  e: {type: enum, choices: {1: A, b: B}}\n",
            "fields.e.choices: choice values must be all integers or all strings",
        ),
        (
            "name: x\nfields:\n  f: {type: file, max_size: lots}\n",
            "fields.f.max_size: expected a size such as 10MB",
        ),
        ("name: x\nfields:\n  r: {type: reference}\n", "fields.r.to: reference fields need 'to'"),
        (
            "name: x\nfields:\n  n: {type: integer, default: many}\n",
            "fields.n.default: default expected an integer",
        ),
        (
            "name: x\nfields:\n  n: {type: integer, min: 5, max: 1}\n",
            "fields.n.min: min (5) is greater than max (1)",
        ),
        (
            "name: x\nfields:\n  n: {type: integer, required: yes please}\n",
            'fields.n.required: expected true or false, got "yes please"',
        ),
    ],
)
def test_each_bad_input_gets_a_clear_error(text: str, message: str) -> None:
    found = problems({"x.component.yaml": text})
    assert any(message in p for p in found), found


def test_sections_for_later_parts_are_kept() -> None:
    text = (
        INVOICES
        + "pages:\n  all: {title: All invoices, layout: [{grid: {}}]}\naccess:\n  roles: {clerk: [read]}\n"
    )
    (loaded,) = load_texts({"invoices.component.yaml": text})
    assert loaded.definition.pages is not None
    assert loaded.definition.pages["all"].layout[0].kind == "grid"
    assert loaded.definition.access == {"roles": {"clerk": ["read"]}}


def test_snapshot_round_trips_with_integer_choices() -> None:
    loaded = load_directory(FIXTURES / "all_types")
    snapshot = {i.definition.name: i.definition.snapshot() for i in loaded}
    again = from_snapshot(json.loads(json.dumps(snapshot)))
    assert again == {i.definition.name: i.definition for i in loaded}
    assert again["items"].fields["status"].choice_values() == [0, 1, 2]


def test_directory_without_definitions_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"no \*\.component\.yaml files found"):
        load_directory(tmp_path)


def test_json_schema_describes_fields() -> None:
    schema = json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    field = schema["$defs"]["FieldDef"]
    assert set(field["properties"]["type"]["enum"]) == set(FIELD_TYPES)
    assert field["additionalProperties"] is False


def test_control_characters_are_a_yaml_error_with_a_line() -> None:
    found = problems(
        {"x.component.yaml": 'name: x\nfields:\n  a: {type: string, title: "a\x95"}\n'}
    )
    assert found == [
        "x.component.yaml:3: invalid YAML: unacceptable character #x0095: special characters are not allowed"
    ]


def test_unknown_keys_are_matched_against_their_own_model() -> None:
    text = """\
name: cars
fields:
  a: {type: string}
dataflows:
  f:
    stages:
      - name: s
        steps:
          - {name: a, query: {limt: 3}}
          - {name: b, join: {with: a, on: {a: a}, type: outer}, sorce: a}
workflows:
  w:
    stages:
      - name: s
        steps:
          - {name: x, approval: {rol: managers}}
"""
    with pytest.raises(DefinitionError) as info:
        load_texts({"cars.component.yaml": text})
    found = [str(p) for p in info.value.problems]
    steps = "cars.component.yaml:{} dataflows.f.stages[0].steps"
    assert (
        f"{steps.format(9)}[0].query.limt: unknown option 'limt' (did you mean 'limit'?)" in found
    )
    assert f"{steps.format(10)}[1].sorce: unknown option 'sorce' (did you mean 'source'?)" in found
    # A key named type outside a field is not a field type.
    assert (
        f"{steps.format(10)}[1].join.type: input should be 'inner' or 'left', got \"outer\""
        in found
    )
    assert (
        "cars.component.yaml:16 workflows.w.stages[0].steps[0].approval.rol: "
        "unknown option 'rol' (did you mean 'role'?)" in found
    )


def test_a_key_written_one_level_too_deep_says_where_it_goes() -> None:
    text = """\
name: cars
fields:
  a: {type: string}
pages:
  p:
    layout:
      - panel: {name: extra, children: [{field: a}]}
"""
    with pytest.raises(DefinitionError) as info:
        load_texts({"cars.component.yaml": text})
    assert [str(p) for p in info.value.problems] == [
        "cars.component.yaml:7 pages.p.layout[0].panel.name: unknown option 'name' "
        "('name' goes beside 'panel', not inside it)"
    ]
