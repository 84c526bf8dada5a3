"""Workflow definitions: shapes and cross-references are checked at publish, with lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from appbook.server.definitions import load_directory, load_texts
from appbook.server.definitions.workflows import duration_seconds
from appbook.server.engine import Appbook
from appbook.server.errors import DefinitionError

BASE = """\
name: invoices
fields:
  number: {type: string}
  amount: {type: number}
  status: {type: enum, choices: {0: New, 3: Paid, 4: Overdue}}
workflows:
"""
GOOD = """\
  overdue:
    title: Mark unpaid invoices overdue
    trigger: {cron: "0 2 * * *", timezone: Europe/Paris, missed: run_once}
    max_concurrent: 1
    stages:
      - name: find
        steps:
          - name: scan
            notebook: overdue.ipynb
            parameters: {days: inputs.days}
            retries: {count: 2, backoff: 30s}
            timeout: 10m
            on_failure: {goto: tell}
          - name: big
            if: "record.amount > 10000"
            then: approve
            else: mark
          - name: approve
            approval: {role: managers, deadline: 2d, on_expiry: reject, rejected: tell}
          - name: mark
            update_field: {field: status, value: 4}
            next: done
          - name: tell
            notify: {email: {to: "ops@example.org", subject: "Overdue scan failed"}}
          - name: done
            finish: {}
"""


def problems(workflows: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_texts({"invoices.component.yaml": BASE + workflows})
    return [str(p) for p in info.value.problems]


def test_a_good_workflow_loads_and_survives_publication(app: Appbook, tmp_path: Path) -> None:
    (tmp_path / "invoices.component.yaml").write_text(BASE + GOOD)
    (tmp_path / "overdue.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    (loaded,) = load_directory(tmp_path)
    workflow = (loaded.definition.workflows or {})["overdue"]
    assert [s.kind for _, s in workflow.steps()] == [
        "notebook", "if", "approval", "update_field", "notify", "finish",
    ]  # fmt: skip
    app.publish(tmp_path)
    stored = app.registry.get("invoices").definition.workflows or {}
    assert stored == loaded.definition.workflows  # the snapshot round-trips
    snapshot = app.registry.get("invoices").definition.snapshot()
    big = snapshot["workflows"]["overdue"]["stages"][0]["steps"][1]
    assert big["if"] == "record.amount > 10000" and big["else"] == "mark"  # as written


def test_every_problem_is_named_with_its_line() -> None:
    bad = (
        GOOD.replace("then: approve", "then: aprove")
        .replace('"0 2 * * *"', '"0 2 * *"')
        .replace("timeout: 10m", "timeout: ten minutes")
        .replace("field: status", "field: state")
        .replace("record.amount > 10000", "record.amount >")
        .replace(
            "next: done",
            "next: done\n          - name: orphan\n            wait: {for: 1h}\n            next: done",
        )
    )
    found = "\n".join(problems(bad))
    assert "invoices.component.yaml:" in found
    assert "steps[1].then: unknown step 'aprove'" in found
    assert "trigger.cron: '0 2 * *' is not a five-field cron expression" in found
    assert "steps[0].timeout: 'ten minutes' is not a duration" in found
    assert "steps[3].update_field.field: unknown field 'state'" in found
    assert "steps[1].if: 'record.amount >' is not a valid expression" in found
    assert "steps[4].name: step 'orphan' can never run" in found
    assert "steps[2].name: step 'approve' can never run" in found  # nothing reaches it now


def test_step_shapes_are_checked() -> None:
    found = "\n".join(
        problems(
            """\
  w:
    stages:
      - name: s
        steps:
          - {name: a, notebook: x.ipynb, finish: {}}
          - {name: b, approval: {deadline: 1d}}
          - {name: c, notify: {}}
          - {name: a2, update_field: {field: amount, value: 1}, bogus: 1}
"""
        )
    )
    assert "a step has exactly one of notebook" in found and "found: notebook, finish" in found
    assert "an approval names exactly one of user or role" in found
    assert "notify has exactly one of email or webhook" in found
    assert "bogus" in found


def test_dataflow_steps_name_a_dataflow_of_the_component() -> None:
    flows = """\
dataflows:
  reprice:
    stages:
      - name: s
        steps: [{name: a, action_model: {}}, {name: b, respond: {}}]
"""
    workflow = """\
  w:
    stages:
      - name: s
        steps:
          - {name: ok, dataflow: reprice}
          - {name: typo, dataflow: repirce}
"""
    with pytest.raises(DefinitionError) as info:
        load_texts(
            {
                "invoices.component.yaml": BASE.replace("workflows:\n", flows + "workflows:\n")
                + workflow
            }
        )
    found = [str(p) for p in info.value.problems]
    assert len(found) == 1, found
    assert found[0].startswith("invoices.component.yaml:17 "), found  # the step's line
    assert "steps[1].dataflow: unknown dataflow 'repirce' (dataflows: reprice)" in found[0]
    # With no dataflows section at all, the message says so.
    assert "unknown dataflow 'repirce' (dataflows: none)" in "\n".join(problems(workflow))


def test_notebooks_must_exist_beside_the_definition(tmp_path: Path) -> None:
    (tmp_path / "invoices.component.yaml").write_text(BASE + GOOD)
    with pytest.raises(
        DefinitionError, match=r"no notebook 'overdue\.ipynb' beside the definition"
    ):
        load_directory(tmp_path)


def test_record_triggers_name_known_fields() -> None:
    found = "\n".join(
        problems(
            """\
  paid:
    trigger: {on: update, fields: [status, colour], when: "record.status == 3"}
    stages:
      - name: s
        steps:
          - {name: done, finish: {}}
  both:
    trigger: {on: create, cron: "* * * * *", fields: [status]}
    stages:
      - name: s
        steps:
          - {name: done, finish: {}}
"""
        )
    )
    assert "workflows.paid.trigger.fields[1]: unknown field 'colour'" in found
    assert "workflows.both.trigger: a trigger has exactly one of cron, on, webhook" in found
    assert "workflows.both.trigger.fields: fields apply to on: update only" in found


def test_durations() -> None:
    assert duration_seconds("30s") == 30 and duration_seconds("1.5h") == 5400
    assert duration_seconds("2d") == 172800
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds("soon")
