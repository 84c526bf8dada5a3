"""REST: run dataflows and read their log through a real jupyter_server, on SQLite and
PostgreSQL. Dataflows with scripts run in a child process with limits, never in the
server (whose process is this test's)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from appbook.server.engine import Appbook
from tests.conftest import FIXTURES

Api = Any


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    jp_server_config.ServerApp.tornado_settings = {
        "appbook_dataflow_seconds": 4,  # counted once the child has started
        "appbook_dataflow_memory": 1024**3,
    }
    return jp_server_config


@pytest.fixture
def engine(jp_serverapp: Any) -> Appbook:
    app: Appbook = jp_serverapp.web_app.settings["appbook_engine"]
    app.publish(FIXTURES / "dataflows")
    app["makers"].create({"name": "VW"})
    app["cars"].create({"plate": "A-1", "price": 10})
    return app


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


async def test_run_answers_the_respond_value_and_logs_the_run(api: Api, engine: Appbook) -> None:
    rows = [{"plate": "A-1", "price": 12, "gone": False}]
    response = await api("POST", "dataflows/cars/sync/run", json_body={"inputs": {"rows": rows}})
    assert response.code == 200, response.body
    result = body(response)
    assert result["value"][0]["price"] == 12 and result["actions"] == []
    log = body(await api("GET", "dataflows/cars/sync/runs"))
    assert log["next"] is None
    [entry] = log["items"]
    assert entry["id"] == result["run_id"] and entry["via"] == "rest"
    assert entry["status"] == "succeeded" and entry["actor"] == engine.actor
    assert [s["out"] for s in entry["steps"]] == [1, 1, 1, 1, 1]


async def test_scripts_run_in_a_child_process(api: Api, engine: Appbook) -> None:
    response = await api("POST", "dataflows/cars/pid/run")
    assert response.code == 200, response.body
    assert body(response)["value"] != os.getpid()
    nested = body(await api("POST", "dataflows/cars/calls_script/run"))
    assert nested["value"] != os.getpid()  # a script reached through another dataflow
    car = engine["cars"].query({"plate": "A-1"})[0]
    added = await api(
        "POST", "dataflows/cars/add_car/run", json_body={"record": car["id"], "inputs": {"tax": 1}}
    )
    assert body(added)["value"]["price"] == 20 and engine["cars"].get(car["id"])["price"] == 20
    assert body(added)["actions"][0]["page"] == "view"


async def test_a_runaway_script_is_stopped_and_the_api_keeps_serving(
    api: Api, engine: Appbook
) -> None:
    running = asyncio.ensure_future(api("POST", "dataflows/cars/runaway/run"))
    health = await api("GET", "health")  # answered while the script spins
    assert health.code == 200 and not running.done()
    response = await running
    assert response.code == 422
    assert "ran over its time limit of 4 s and was stopped" in body(response)["error"]["message"]
    assert engine["makers"].count({"name": "Spinner"}) == 0  # its write rolled back
    [entry] = body(await api("GET", "dataflows/cars/runaway/runs"))["items"]
    assert entry["status"] == "failed" and "time limit" in entry["error"]


async def test_a_script_over_its_memory_limit_fails(api: Api, engine: Appbook) -> None:
    response = await api("POST", "dataflows/cars/greedy/run")
    assert response.code == 422
    assert "step hog: ran out of memory" in body(response)["error"]["message"]


async def test_failures_name_the_step_and_write_nothing(api: Api, engine: Appbook) -> None:
    before = engine["makers"].count()
    response = await api(
        "POST", "dataflows/cars/fail_midway/run", json_body={"inputs": {"names": ["x", "bad"]}}
    )
    assert response.code == 422
    error = body(response)["error"]
    assert error["message"].startswith("dataflow cars.fail_midway, stage cars, step car, item 2")
    assert "price" in error["fields"] and engine["makers"].count() == before
    failing_script = await api("POST", "dataflows/cars/scripts_fail/run")
    assert failing_script.code == 422
    assert "step boom: RuntimeError: the script gave up" in body(failing_script)["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "says"),
    [
        ("POST", "dataflows/cars/nope/run", {}, 404, "no dataflow 'nope' in component cars"),
        ("POST", "dataflows/nope/x/run", {}, 404, "nope"),
        ("POST", "dataflows/cars/sync/run", {"inputs": 3}, 422, "inputs"),
        ("POST", "dataflows/cars/sync/run", {"extra": 1}, 422, "extra"),
        ("GET", "dataflows/cars/nope/runs", None, 404, "no dataflow 'nope'"),
        ("GET", "dataflows/cars/sync/runs?limit=0", None, 422, "limit"),
    ],
)
async def test_bad_requests(
    api: Api, engine: Appbook, method: str, path: str, payload: Any, status: int, says: str
) -> None:
    target, _, query = path.partition("?")
    params = dict(p.split("=") for p in query.split("&")) if query else None
    response = await api(method, target, json_body=payload, params=params)
    assert response.code == status, response.body
    assert says in json.dumps(body(response))


async def test_the_run_log_pages(api: Api, engine: Appbook) -> None:
    for _ in range(3):
        await api("POST", "dataflows/cars/answer_groups/run")
    first = body(await api("GET", "dataflows/cars/answer_groups/runs", params={"limit": 2}))
    assert len(first["items"]) == 2 and first["next"] is not None
    rest = await api(
        "GET", "dataflows/cars/answer_groups/runs", params={"limit": 2, "before": first["next"]}
    )
    assert len(body(rest)["items"]) == 1 and body(rest)["next"] is None


PROBES = """\
name: probes
fields:
  url: {type: string}
dataflows:
  fetch:
    stages:
      - name: s
        steps:
          - {name: form, action_model: {}}
          - {name: same, script: {function: same}}
          - {name: get, http_get: {url: "http://127.0.0.1:9/internal"}}
          - {name: out, respond: {}}
"""


async def test_a_refused_outside_call_in_a_child_process_is_403(
    api: Api, engine: Appbook, tmp_path: Any
) -> None:
    # Scripts send the run to a child process; the guard's refusal must come back as
    # itself (403, policy), not as a generic dataflow failure.
    shutil.copytree(FIXTURES / "dataflows", tmp_path, dirs_exist_ok=True)  # what is published
    (tmp_path / "probes.component.yaml").write_text(PROBES)
    (tmp_path / "probes.py").write_text("def same(items, context):\n    return items\n")
    engine.publish(tmp_path)
    response = await api("POST", "dataflows/probes/fetch/run")
    assert response.code == 403, response.body
    error = body(response)["error"]
    assert error["code"] == "outbound_refused"
    assert "127.0.0.1" in error["message"] and "step get" in error["message"]
