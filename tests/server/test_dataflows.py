"""Running dataflows on SQLite and PostgreSQL: each kind, one transaction, the run log."""

from __future__ import annotations

import json

import pytest

from appbook.server.dataflows import DataflowFailed
from appbook.server.dataflows.log import runs
from appbook.server.engine import Appbook
from appbook.server.errors import NotFound, ValidationError
from appbook.server.expressions import ExpressionError
from tests.conftest import FIXTURES


@pytest.fixture
def cars(app: Appbook) -> Appbook:
    app.publish(FIXTURES / "dataflows")
    vw = app["makers"].create({"name": "VW", "country": "DE"})
    fiat = app["makers"].create({"name": "Fiat", "country": "IT"})
    for plate, price, maker, tags, status in [
        ("A-1", 10000, vw, ["blue", "estate"], 0),
        ("B-2", 20000, vw, ["red"], 1),
        ("C-3", 30000, fiat, ["blue"], 2),
        ("D-4", 5000, None, [], 0),
    ]:
        app["cars"].create(
            {
                "plate": plate,
                "price": price,
                "maker": maker["id"] if maker else None,
                "tags": tags,
                "status": status,
            }
        )
    return app


def test_add_car_runs_its_script_updates_and_responds(cars: Appbook) -> None:
    car = cars["cars"].create({"plate": "ab 12 cd", "price": 100})
    result = cars["cars"].run_dataflow("add_car", {"tax": 0.2}, record=car["id"])
    assert result.value["plate"] == "AB12CD" and result.value["price"] == pytest.approx(120)
    assert cars["cars"].get(car["id"])["plate"] == "AB12CD"
    assert result.actions == [{"action": "open_page", "page": "view", "params": {"id": car["id"]}}]
    log = runs(cars, "cars", "add_car")
    assert log[0]["status"] == "succeeded" and log[0]["actor"] == "tester"
    assert [(s["step"], s["in"], s["out"]) for s in log[0]["steps"]] == [
        ("form", 0, 1),
        ("normalise", 1, 1),
        ("save", 1, 1),
        ("answer", 1, 1),
        ("show", 1, 1),
    ]


def test_a_fresh_script_module_per_run(cars: Appbook) -> None:
    assert cars["cars"].run_dataflow("counted").value == 1
    assert cars["cars"].run_dataflow("counted").value == 1


def test_transforms_join_group_expand_distinct_filter_lookup_calculate(cars: Appbook) -> None:
    result = cars["cars"].run_dataflow("report", {"min": 6000})
    assert result.value == {"cars": 3, "tags": ["blue", "estate", "red"]}
    steps = {s["step"]: s for s in result.steps}
    assert steps["cars"]["out"] == 3 and steps["cars"]["max_chunk"] == 2  # chunk_size 2
    assert steps["pricey"]["out"] == 2 and steps["tags"]["out"] == 4
    assert steps["found"]["out"] == 3
    groups = cars["cars"].run_dataflow("answer_groups").value
    assert sorted((g["status"], g["count"]) for g in groups) == [(0, 2), (1, 1), (2, 1)]


def test_group_by_metrics(cars: Appbook) -> None:
    result = cars["cars"].run_dataflow("report", {"min": 0})
    [action] = result.actions
    by = {g["maker"]: g for g in action["params"]["groups"]}
    assert by["VW"] == {"maker": "VW", "n": 2, "total": 30000, "top": 20000, "mean": 15000}
    assert by[None]["n"] == 1 and by["Fiat"]["total"] == 30000


def test_update_by_key_and_mark_for_deletion(cars: Appbook) -> None:
    rows = [
        {"plate": "A-1", "price": 11, "gone": False},
        {"plate": "D-4", "price": 0, "gone": True},
    ]
    out = cars["cars"].run_dataflow("sync", {"rows": rows}).value
    assert out[0]["price"] == 11 and out[1] == {"id": out[1]["id"], "deleted": True}
    assert cars["cars"].count({"plate": "D-4"}) == 0
    with pytest.raises(NotFound, match=r"step apply, item 1: no cars record with plate 'Z'"):
        cars["cars"].run_dataflow("sync", {"rows": [{"plate": "Z", "price": 1, "gone": False}]})


def test_get_record_empty_model_delete(cars: Appbook) -> None:
    first = cars["cars"].query(order_by="plate", limit=1)[0]
    result = cars["cars"].run_dataflow("one_and_blank", {"id": first["id"]})
    # the empty model (status at its default, 0) joined with the record (status 0)
    assert result.value == [{**first, "plate": "A-1"}]
    with pytest.raises(NotFound, match="step one: cars record 999 does not exist"):
        cars["cars"].run_dataflow("one_and_blank", {"id": 999})
    assert cars["cars"].run_dataflow("remove").value == 1
    assert cars["cars"].count({"status": 2}) == 0


def test_import_file_creates_records(cars: Appbook) -> None:
    info = cars.files.put(b"name,country\nSeat,ES\nSkoda,CZ\n", name="makers.csv")
    result = cars["cars"].run_dataflow("import_makers", {"file": info.id})
    assert result.value == ["Seat", "Skoda"] and cars["makers"].count() == 4
    bad = cars.files.put(b"name,country\nSeat,ES\n", name="again.csv")
    with pytest.raises(Exception, match="step made, item 1") as info_:
        cars["cars"].run_dataflow("import_makers", {"file": bad.id})
    assert "already used" in str(info_.value) and cars["makers"].count() == 4
    jsonl = cars.files.put(b'{"name": "Opel"}\n', name="m.jsonl")
    with pytest.raises(ExpressionError, match=r"step made, item 1: 'item\.country': no key"):
        cars["cars"].run_dataflow("import_makers", {"file": jsonl.id})
    jsonl = cars.files.put(b'{"name": "Opel", "country": null}\n', name="m.jsonl")
    assert cars["cars"].run_dataflow("import_makers", {"file": jsonl.id}).value == ["Opel"]


def test_a_failing_step_rolls_everything_back_and_names_stage_step_item(cars: Appbook) -> None:
    before = cars["makers"].count(), cars["cars"].count()
    with pytest.raises(ValidationError) as info:
        cars["cars"].run_dataflow("fail_midway", {"names": ["ok", "fine", "bad"]})
    message = info.value.message
    assert message.startswith("dataflow cars.fail_midway, stage cars, step car, item 3 (id ")
    assert "price" in info.value.errors
    assert (cars["makers"].count(), cars["cars"].count()) == before  # nothing written
    log = runs(cars, "cars", "fail_midway")[0]
    assert log["status"] == "failed" and "step car, item 3" in log["error"]
    cars["cars"].run_dataflow("fail_midway", {"names": ["ok"]})
    assert cars["makers"].count() == before[0] + 1


def test_expression_errors_are_named(cars: Appbook) -> None:
    with pytest.raises(ExpressionError, match=r"stage s, step bad, item 1 \(id \d+\)"):
        cars["cars"].run_dataflow("start_then_fail")
    assert cars.runs.query(component="cars") == []  # rolled back: no workflow started


def test_run_workflow_starts_runs_after_the_commit(cars: Appbook) -> None:
    cars["cars"].run_dataflow("start_workflows")
    started = cars.runs.query(component="cars", workflow="list_it")
    assert len(started) == 4 and {r["status"] for r in started} == {"queued"}


def test_script_failures_are_dataflow_failures(cars: Appbook) -> None:
    with pytest.raises(DataflowFailed, match="step boom: RuntimeError: the script gave up"):
        cars["cars"].run_dataflow("scripts_fail")
    with pytest.raises(DataflowFailed, match="returned int, expected a list of items"):
        cars["cars"].run_dataflow("scripts_bad")


def test_dataflows_call_dataflows(cars: Appbook) -> None:
    texts = [i["text"] for i in cars["cars"].run_dataflow("per_car").value]
    assert texts == ["car A-1", "car B-2", "car C-3", "car D-4"]
    with pytest.raises(DataflowFailed, match="more than 8 deep"):
        cars["cars"].run_dataflow("loop")


def test_unknown_dataflow(cars: Appbook) -> None:
    with pytest.raises(NotFound, match="no dataflow 'nope' in component cars"):
        cars["cars"].run_dataflow("nope")


def test_a_big_query_streams_in_chunks(cars: Appbook) -> None:
    cars["cars"].import_rows([{"plate": f"X-{i}", "price": i} for i in range(5000)])
    result = cars["cars"].run_dataflow("reprice")
    steps = {s["step"]: s for s in result.steps}
    assert steps["cars"]["out"] == 5004 and steps["write"]["out"] == 5004
    # no step ever held more than one chunk of the query, and no more updates were queued
    assert max(s["max_chunk"] for s in result.steps) == 500
    assert result.peak_deferred == 500
    assert cars["cars"].query({"plate": "X-4999"})[0]["price"] == 5000
    assert cars["cars"].query({"plate": "X-4999"})[0]["version"] == 2


def test_a_workflow_step_runs_a_dataflow_on_the_runs_record(cars: Appbook) -> None:
    car = cars["cars"].create({"plate": "wf 1", "price": 100})
    run = cars["cars"].run_workflow("via_dataflow", record_id=car["id"])
    assert run["status"] == "succeeded", run
    [step] = cars.runs.steps(int(run["id"]))
    assert step["outputs"]["value"]["plate"] == "WF1" and step["outputs"]["value"]["price"] == 150
    assert cars["cars"].get(car["id"])["price"] == 150
    assert runs(cars, "cars", "add_car")[0]["via"] == "workflow"


def test_render_template_renders_html_in_the_sandbox(cars: Appbook) -> None:
    result = cars["cars"].run_dataflow("sheet")
    assert result.value[0] == "<b>A-1</b>" and len(result.value) == 4
    html = result.actions[0]["params"]["html"]
    assert html == "<ul><li>A-1</li><li>B-2</li><li>C-3</li><li>D-4</li></ul>"
    # A record's text is inserted escaped: it cannot add markup or a script to the page.
    cars["cars"].create({"plate": "E<script>alert(1)</script>"})
    rows = cars["cars"].run_dataflow("sheet").value
    assert rows[-1] == "<b>E&lt;script&gt;alert(1)&lt;/script&gt;</b>"


def test_export_file_stores_the_items_after_the_commit(cars: Appbook) -> None:
    result = cars["cars"].run_dataflow("export", {"tag": "all"})
    out = result.files["out"]
    assert out["name"] == "cars-all.csv" and out["items"] == 4
    assert result.actions == [{"action": "open_file", "file": out["id"]}]
    csv_text = cars.files.get(out["id"]).decode()
    assert csv_text.splitlines() == [
        "plate,price",
        "A-1,10000.0",
        "B-2,20000.0",
        "C-3,30000.0",
        "D-4,5000.0",
    ]
    assert json.loads(cars.files.get(result.files["js"]["id"])) == [
        {"plate": p} for p in ("A-1", "B-2", "C-3", "D-4")
    ]
    lines = cars.files.get(result.files["lines"]["id"]).decode().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["plate"] == "A-1"
    with pytest.raises(ExpressionError, match="step bad"):
        cars["cars"].run_dataflow("export_then_fail")
    assert len(cars.files.list("exports")) == 3  # the failed run stored nothing
