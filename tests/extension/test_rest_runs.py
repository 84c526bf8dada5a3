"""REST: workflows and runs through a real jupyter_server, on SQLite and PostgreSQL.

Runs started here stay queued (the server never advances them); the tests move them on with
``app.runs.advance``, as an executor would. Two identities sign in: the owner (pytest-jupyter's
token, acting as the engine's actor) and ``viewer`` (its own token).
"""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from nbformat.v4 import new_code_cell, new_notebook, new_output
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from appbook.server.db import write_transaction
from appbook.server.engine import Appbook
from appbook.server.systables import STEP_RUNS

Api = Any
VIEWER = {"Authorization": "token viewer-token"}
TICKETS = """\
name: tickets
fields:
  title: {type: string}
  status: {type: enum, choices: {0: New, 1: Accepted, 2: Rejected}, default: 0}
  note: {type: string}
workflows:
  review:
    title: Review a ticket
    stages:
      - name: decide
        steps:
          - {name: ask, approval: {role: managers, rejected: refuse}}
          - {name: accept, update_field: {field: status, value: 1}, next: end}
          - {name: refuse, update_field: {field: status, value: 2}}
          - {name: end, finish: {}}
  signoff:
    stages:
      - name: s
        steps:
          - {name: sign, approval: {user: viewer}}
          - {name: done, update_field: {field: note, value: signed}}
  last:
    stages:
      - name: s
        steps:
          - {name: sign, approval: {user: viewer}}
  broken:
    stages:
      - name: s
        steps:
          - {name: bad, update_field: {field: status, value: 99}}
          - {name: end, finish: {}}
  later:
    trigger: {on: create}
    stages:
      - name: s
        steps:
          - {name: pause, wait: {for: 1h}}
"""


class TwoUsers(IdentityProvider):
    """The owner's token as usual, plus ``viewer-token`` for a user named viewer."""

    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        if handler.request.headers.get("Authorization") == VIEWER["Authorization"]:
            handler._token_authenticated = True  # a token, like the owner's: no XSRF cookie
            return User(username="viewer", name="Viewer")
        user: User | None = await super().get_user(handler)
        return user


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    jp_server_config.ServerApp.identity_provider_class = TwoUsers
    # Runs stay queued: the tests advance them, as an executor would.
    jp_server_config.AppbookApp.workflow_executor_class = (
        "appbook.server.workflows.executor.NoExecutor"
    )
    return jp_server_config


@pytest.fixture
def engine(jp_serverapp: Any) -> Appbook:
    """The server's engine with the tickets component and one ticket."""
    app: Appbook = jp_serverapp.web_app.settings["appbook_engine"]
    app.publish_texts({"tickets.component.yaml": TICKETS})
    app["tickets"].create({"title": "Paper"})
    return app


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


async def start(api: Api, workflow: str, **values: Any) -> dict[str, Any]:
    response = await api("POST", f"workflows/tickets/{workflow}/runs", json_body=values)
    assert response.code == 201, response.body
    run: dict[str, Any] = body(response)
    return run


async def test_start_queues_a_run_as_the_signed_in_user(api: Api, engine: Appbook) -> None:
    response = await api("POST", "workflows/tickets/review/runs", json_body={"record_id": 1})
    assert response.code == 201
    run = body(response)
    assert response.headers["Location"] == f"/appbook/api/runs/{run['id']}"
    assert run["status"] == "queued" and run["step"] == "ask" and run["steps"] == []
    assert run["created_by"] == engine.actor and run["trigger"] == "manual"
    assert run["duration"] >= 0 and run["actions"] == ["cancel"]
    # The server did not advance it: it is still queued for an executor.
    assert engine.runs.get(run["id"])["status"] == "queued"
    theirs = await api(
        "POST", "workflows/tickets/later/runs", json_body={"inputs": {"k": 1}}, headers=VIEWER
    )
    assert body(theirs)["created_by"] == "viewer" and body(theirs)["inputs"] == {"k": 1}
    empty = await api("POST", "workflows/tickets/later/runs")  # no body: no record, no inputs
    assert empty.code == 201 and body(empty)["record_id"] is None


@pytest.mark.parametrize(
    ("path", "payload", "status", "says"),
    [
        ("workflows/tickets/nope/runs", {}, 404, "has no workflow 'nope'"),
        ("workflows/nope/review/runs", {}, 404, "nope"),
        ("workflows/tickets/review/runs", {"record_id": 42}, 404, "42"),
        ("workflows/tickets/review/runs", {"record_id": 2**70}, 404, "tickets record"),
        ("workflows/tickets/review/runs", {"inputs": [1]}, 422, "inputs"),
        ("workflows/tickets/review/runs", {"record": 1}, 422, "record"),
    ],
)
async def test_start_refusals_name_what_is_wrong(
    api: Api, engine: Appbook, path: str, payload: Any, status: int, says: str
) -> None:
    response = await api("POST", path, json_body=payload)
    assert response.code == status, response.body
    assert says in json.dumps(body(response)["error"])
    assert engine.runs.query() == []  # nothing was started


async def test_start_needs_json(api: Api, engine: Appbook) -> None:
    response = await api("POST", "workflows/tickets/review/runs", body="{not json")
    assert response.code == 400 and body(response)["error"]["code"] == "bad_request"


async def test_workflows_lists_triggers_and_steps(api: Api, engine: Appbook) -> None:
    items = body(await api("GET", "workflows"))["items"]
    by_name = {(i["component"], i["name"]): i for i in items}
    review = by_name["tickets", "review"]
    assert review["title"] == "Review a ticket" and review["trigger"] is None
    assert [(s["name"], s["kind"]) for s in review["steps"]] == [
        ("ask", "approval"), ("accept", "update_field"), ("refuse", "update_field"),
        ("end", "finish"),
    ]  # fmt: skip
    assert by_name["tickets", "later"]["trigger"]["on"] == "create"


async def test_list_filters_and_pages_newest_first(api: Api, engine: Appbook) -> None:
    ids = [(await start(api, "later"))["id"] for _ in range(3)]
    failed = (await start(api, "broken", record_id=1))["id"]
    engine.runs.advance(failed)
    page = body(await api("GET", "runs", params={"limit": 2}))
    assert [r["id"] for r in page["items"]] == [failed, ids[2]] and page["next"] == ids[2]
    rest = body(await api("GET", "runs", params={"limit": 2, "before": page["next"]}))
    assert [r["id"] for r in rest["items"]] == [ids[1], ids[0]] and rest["next"] is None
    only = body(await api("GET", "runs", params={"status": "failed,cancelled"}))
    assert [r["id"] for r in only["items"]] == [failed]
    assert only["items"][0]["error"].startswith("step bad:")
    by_flow = body(await api("GET", "runs", params={"workflow": "later", "component": "tickets"}))
    assert len(by_flow["items"]) == 3
    on_record = body(await api("GET", "runs", params={"record_id": 1}))
    assert [r["id"] for r in on_record["items"]] == [failed]


@pytest.mark.parametrize(
    ("params", "status", "name"),
    [
        ({"status": "bogus"}, 422, "status"),
        ({"record_id": "x"}, 400, "record_id"),
        ({"before": "1.5"}, 400, "before"),
        ({"before": str(2**70)}, 422, "before"),
        ({"limit": "0"}, 422, "limit"),
        ({"limit": "ten"}, 400, "limit"),
    ],
)
async def test_bad_filters_name_the_parameter(
    api: Api, engine: Appbook, params: dict[str, str], status: int, name: str
) -> None:
    response = await api("GET", "runs", params=params)
    assert response.code == status, response.body
    error = body(response)["error"]
    assert name in error["message"] or name in (error.get("fields") or {})


async def test_unknown_runs_are_404(api: Api, engine: Appbook) -> None:
    for path in ("runs/999", f"runs/{2**70}", "runs/999:cancel", "runs/999/steps/1/notebook"):
        response = await api("GET" if "cancel" not in path else "POST", path)
        assert response.code == 404, path
        assert body(response)["error"]["code"] == "not_found"


async def test_approvals_go_to_the_role_holder_only(api: Api, engine: Appbook) -> None:
    engine.users.add("viewer", roles=["managers"])
    approve_id = (await start(api, "review", record_id=1))["id"]
    reject_id = (await start(api, "review", record_id=1))["id"]
    for run_id in (approve_id, reject_id):
        assert engine.runs.advance(run_id)["status"] == "waiting"
    shown = body(await api("GET", f"runs/{approve_id}"))
    assert shown["waiting_for"] == {"step": "ask", "role": "managers", "deadline": None}
    assert shown["actions"] == ["cancel"]  # the owner holds no role
    assert body(await api("GET", f"runs/{approve_id}", headers=VIEWER))["actions"] == [
        "approve", "reject", "cancel",
    ]  # fmt: skip
    refused = await api("POST", f"runs/{approve_id}:approve", json_body={})
    assert refused.code == 403 and "managers" in body(refused)["error"]["message"]
    assert engine.runs.get(approve_id)["status"] == "waiting"  # nothing changed
    done = await api(
        "POST", f"runs/{approve_id}:approve", json_body={"comment": "fine"}, headers=VIEWER
    )
    assert done.code == 200, done.body
    run = body(done)
    # Decided, and queued at the next step: the server runs no step itself.
    assert run["status"] == "queued" and run["step"] == "accept" and run["actions"] == ["cancel"]
    assert run["outputs"]["ask"]["by"] == "viewer" and run["outputs"]["ask"]["comment"] == "fine"
    assert [(s["step"], s["status"]) for s in run["steps"]] == [("ask", "succeeded")]
    assert engine["tickets"].get(1)["status"] == 0
    assert engine.runs.advance(approve_id)["status"] == "succeeded"  # as an executor would
    assert engine["tickets"].get(1)["status"] == 1
    again = await api("POST", f"runs/{approve_id}:approve", headers=VIEWER)
    assert again.code == 409 and body(again)["error"]["code"] == "conflict"
    rejected = body(await api("POST", f"runs/{reject_id}:reject", headers=VIEWER))
    assert rejected["status"] == "queued" and rejected["step"] == "refuse"
    assert rejected["outputs"]["ask"]["approved"] is False
    engine.runs.advance(reject_id)
    assert engine["tickets"].get(1)["status"] == 2
    bad = await api("POST", f"runs/{reject_id}:reject", json_body={"comment": 3}, headers=VIEWER)
    assert bad.code == 422 and "comment" in body(bad)["error"]["fields"]


async def test_named_approver(api: Api, engine: Appbook) -> None:
    run_id = (await start(api, "signoff", record_id=1))["id"]
    engine.runs.advance(run_id)
    assert (await api("POST", f"runs/{run_id}:reject")).code == 403
    done = body(await api("POST", f"runs/{run_id}:approve", headers=VIEWER))
    assert done["status"] == "queued" and done["step"] == "done"
    engine.runs.advance(run_id)
    assert engine["tickets"].get(1)["note"] == "signed"
    last = (await start(api, "last", record_id=1))["id"]  # nothing follows the approval
    engine.runs.advance(last)
    ended = body(await api("POST", f"runs/{last}:reject", headers=VIEWER))
    assert ended["status"] == "failed" and ended["error"] == "step sign: rejected by viewer"


async def test_cancel_and_retry(api: Api, engine: Appbook) -> None:
    queued = (await start(api, "later"))["id"]
    cancelled = await api("POST", f"runs/{queued}:cancel")
    assert cancelled.code == 200 and body(cancelled)["status"] == "cancelled"
    assert body(cancelled)["finished_at"] is not None
    assert (await api("POST", f"runs/{queued}:cancel")).code == 409
    assert (await api("POST", f"runs/{queued}:retry")).code == 409
    failed = (await start(api, "broken", record_id=1))["id"]
    engine.runs.advance(failed)
    shown = body(await api("GET", f"runs/{failed}"))
    assert shown["status"] == "failed" and shown["actions"] == ["retry"]
    (step,) = shown["steps"]
    assert step["status"] == "failed" and step["attempt"] == 1 and step["duration"] >= 0
    retried = body(await api("POST", f"runs/{failed}:retry", headers=VIEWER))
    assert retried["status"] == "queued" and retried["step"] == "bad" and retried["error"] == ""
    assert engine.runs.get(failed)["status"] == "queued"  # queued, not run here


async def test_executed_notebook_download_and_sandboxed_html(api: Api, engine: Appbook) -> None:
    run_id = (await start(api, "broken", record_id=1))["id"]
    engine.runs.advance(run_id)
    other_id = (await start(api, "broken", record_id=1))["id"]
    engine.runs.advance(other_id)
    (step,) = engine.runs.steps(run_id)
    cell = new_code_cell("print('hi')", outputs=[
        new_output("stream", name="stdout", text="<script>alert(1)</script>the output\n")
    ])  # fmt: skip
    data = nbformat.writes(new_notebook(cells=[cell])).encode()
    info = engine.files.put(data, name="executed.ipynb")
    with write_transaction(engine.engine) as conn:
        conn.execute(
            STEP_RUNS.update().where(STEP_RUNS.c.id == step["id"]).values(notebook_file=info.id)
        )
    path = f"runs/{run_id}/steps/{step['id']}/notebook"
    got = await api("GET", path)
    assert got.code == 200 and got.body == data
    assert got.headers["Content-Type"] == "application/x-ipynb+json"
    assert got.headers["Content-Disposition"] == f'attachment; filename="run-{run_id}-bad-1.ipynb"'
    page = await api("GET", path + ".html")
    assert page.code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.body.decode()
    assert "the output" in text and "<script>alert(1)</script>" not in text
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    (other,) = engine.runs.steps(other_id)
    missing = await api("GET", f"runs/{other_id}/steps/{other['id']}/notebook")
    assert missing.code == 404 and "executed no notebook" in body(missing)["error"]["message"]
    elsewhere = await api("GET", f"runs/{other_id}/steps/{step['id']}/notebook.html")
    assert elsewhere.code == 404 and "has no step run" in body(elsewhere)["error"]["message"]
