"""The server runs workflows: its executor takes runs started over REST, its trigger
service fires record events, and its settings reach the workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from traitlets.config import Config

from appbook.extension.app import AppbookApp
from appbook.server.outbound import SmtpConfig
from tests.extension.conftest import Api, body

pytestmark = pytest.mark.slow

TICKETS = """\
name: tickets
fields:
  title: {type: string}
  state: {type: string}
workflows:
  triage:
    stages:
      - name: s
        steps:
          - {name: mark, update_field: {field: state, value: triaged}}
  on_new:
    trigger: {on: create, when: "record.title == 'urgent'"}
    stages:
      - name: s
        steps:
          - {name: flag, update_field: {field: state, value: flagged}}
"""


def extension(serverapp: Any) -> AppbookApp:
    (app,) = serverapp.extension_manager.extension_apps["appbook.extension"]
    assert isinstance(app, AppbookApp)
    return app


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    jp_server_config.AppbookApp.workflow_processes = 1
    jp_server_config.AppbookApp.run_lease = 5.0
    return jp_server_config


@pytest.fixture
def running(jp_serverapp: Any) -> Iterator[AppbookApp]:
    """The server with its executor and trigger service started, as `appbook serve` does
    once its loop runs (``_start_jupyter_server_extension``)."""
    ext = extension(jp_serverapp)
    ext.settings["appbook_engine"].publish_texts({"tickets.component.yaml": TICKETS})
    ext.start_workflows()
    try:
        yield ext
    finally:
        for part in (ext.trigger_service, ext.workflow_executor):
            if part is not None:
                part.stop()
        ext.trigger_service = ext.workflow_executor = None


async def until(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s")


async def test_a_run_started_over_rest_is_done_by_the_executor(
    api: Api, running: AppbookApp
) -> None:
    created = await api("POST", "components/tickets/records", json_body={"title": "t"})
    record = body(created)
    response = await api(
        "POST", "workflows/tickets/triage/runs", json_body={"record_id": record["id"]}
    )
    assert response.code == 201 and body(response)["status"] == "queued"
    run_id = body(response)["id"]

    async def done() -> Any:
        run = body(await api("GET", f"runs/{run_id}"))
        return run if run["status"] == "succeeded" else None

    await until(done)
    again = body(await api("GET", f"components/tickets/records/{record['id']}"))
    assert again["state"] == "triaged"


async def test_a_record_event_starts_its_workflow(api: Api, running: AppbookApp) -> None:
    urgent = body(await api("POST", "components/tickets/records", json_body={"title": "urgent"}))
    calm = body(await api("POST", "components/tickets/records", json_body={"title": "calm"}))

    async def flagged() -> Any:
        record = body(await api("GET", f"components/tickets/records/{urgent['id']}"))
        return record["state"] == "flagged"

    await until(flagged)
    runs = body(await api("GET", "runs", params={"workflow": "on_new"}))
    assert [r["record_id"] for r in runs["items"]] == [urgent["id"]]
    assert runs["items"][0]["trigger"] == "event"
    still = body(await api("GET", f"components/tickets/records/{calm['id']}"))
    assert still["state"] is None


def test_server_settings_of_other_parts_reach_the_engine_config() -> None:
    config = Config({"SmtpConfig": {"host": "mail.example.org"}})
    app = AppbookApp(config=config)
    assert SmtpConfig(parent=app.engine_config()).host == "mail.example.org"
