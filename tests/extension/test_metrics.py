"""Prometheus metrics on /metrics and request ids in responses and access logs."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import HTTPResponse

from appbook.extension.metrics import Metrics, process_metrics
from appbook.server.db import create_engine

Api = Any
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

RECORD = "/appbook/api/components/{name}/records/{record_id}"
RECORDS = "/appbook/api/components/{name}/records"


async def scrape(jp_fetch: Any) -> Samples:
    """Every sample /metrics shows, by name and labels (fetched with the server's token)."""
    response: HTTPResponse = await jp_fetch("metrics")
    assert response.code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.body.decode())
        for s in family.samples
    }


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_requests_are_counted_by_route_template(published_api: Api, jp_fetch: Any) -> None:
    before = await scrape(jp_fetch)
    created = await published_api("POST", "components/items/records", json_body={"code": "M1"})
    record_id = body(created)["id"]
    for _ in range(3):
        got = await published_api("GET", f"components/items/records/{record_id}")
        assert got.code == 200
    assert (await published_api("GET", "components/items/records/999999")).code == 404
    after = await scrape(jp_fetch)

    requests = "appbook_http_requests_total"
    assert delta(after, before, requests, route=RECORD, method="GET", status="200") == 3
    assert delta(after, before, requests, route=RECORD, method="GET", status="404") == 1
    assert delta(after, before, requests, route=RECORDS, method="POST", status="201") == 1
    # Labels hold templates, never ids.
    assert not any(str(record_id) in dict(labels).get("route", "") for _, labels in after)
    count = "appbook_http_request_duration_seconds_count"
    assert delta(after, before, count, route=RECORD, method="GET") == 4


async def test_unknown_api_paths_share_one_label(api: Api, jp_fetch: Any) -> None:
    before = await scrape(jp_fetch)
    for path in ("no/such/route", "another/unknown/path/123"):
        assert (await api("GET", path)).code == 404
    after = await scrape(jp_fetch)
    requests = "appbook_http_requests_total"
    assert delta(after, before, requests, route="other", method="GET", status="404") == 2
    assert not any("unknown" in dict(labels).get("route", "") for _, labels in after)


async def test_record_operations_by_component(published_api: Api, jp_fetch: Any) -> None:
    api = published_api
    before = await scrape(jp_fetch)
    created = body(await api("POST", "components/items/records", json_body={"code": "M2"}))
    path = f"components/items/records/{created['id']}"
    assert (await api("GET", path)).code == 200
    assert (await api("GET", "components/items/records", params={"limit": "5"})).code == 200
    assert (await api("PATCH", path, json_body={"qty": 1}, headers={"If-Match": '"1"'})).code == 200
    assert (await api("DELETE", path)).code == 204
    assert (await api("GET", "components/nothing_here/records")).code == 404
    after = await scrape(jp_fetch)

    name = "appbook_record_operations_total"
    for operation in ("create", "read", "query", "update", "delete"):
        assert delta(after, before, name, component="items", operation=operation) == 1, operation
    # A failed call on an unknown component mints no label.
    assert not any(dict(labels).get("component") == "nothing_here" for _, labels in after)


async def test_pool_gauges(published_api: Api, jp_fetch: Any) -> None:
    assert (await published_api("GET", "components/items/records")).code == 200
    samples = await scrape(jp_fetch)
    name = "appbook_db_pool_connections"
    assert value(samples, name, state="size") >= 5
    assert value(samples, name, state="checked_in") >= 1
    assert value(samples, name, state="checked_out") >= 0
    assert value(samples, name, state="overflow") >= 0


async def test_event_lag_observed_for_writes(published_api: Api, jp_fetch: Any) -> None:
    count = "appbook_event_bus_lag_seconds_count"
    before = value(await scrape(jp_fetch), count)
    for code in ("L1", "L2"):
        created = await published_api("POST", "components/items/records", json_body={"code": code})
        assert created.code == 201
    deadline = time.monotonic() + 10
    while (seen := value(await scrape(jp_fetch), count) - before) < 2:
        assert time.monotonic() < deadline, f"only {seen} events observed"
        await asyncio.sleep(0.02)
    samples = await scrape(jp_fetch)
    assert value(samples, "appbook_event_bus_lag_seconds_sum") >= 0


async def test_request_id_header_is_returned_and_echoed(api: Api) -> None:
    fresh = await api("GET", "health")
    assert len(fresh.headers["X-Request-Id"]) == 32
    echoed = await api("GET", "health", headers={"X-Request-Id": "client-chosen-1"})
    assert echoed.headers["X-Request-Id"] == "client-chosen-1"


async def test_access_log_carries_request_id(
    api: Api, jp_serverapp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The server's logger does not propagate: listen on it directly.
    logger: logging.Logger = jp_serverapp.log
    logger.addHandler(caplog.handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        await api("GET", "health", headers={"X-Request-Id": "trace-me-42"})
        await api("GET", "components/nothing_here")
    finally:
        logger.setLevel(level)
        logger.removeHandler(caplog.handler)
    lines = [r for r in caplog.records if "/appbook/api/health (" in r.getMessage()]
    assert lines and lines[-1].getMessage().endswith(" request_id=trace-me-42")
    assert getattr(lines[-1], "request_id", None) == "trace-me-42"
    missing = [r for r in caplog.records if "404 GET" in r.getMessage()]
    assert missing and "request_id=" in missing[-1].getMessage()
    assert missing[-1].levelno == logging.WARNING


def test_metrics_are_registered_once_per_process() -> None:
    assert process_metrics() is process_metrics()
    registry = CollectorRegistry()
    Metrics.create(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics.create(registry)


def test_pool_collector_follows_live_engines(tmp_path: Any) -> None:
    metrics = Metrics.create(CollectorRegistry())
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    metrics.pools.add(engine)
    with engine.connect():
        (family,) = metrics.pools.collect()
        states = {s.labels["state"]: s.value for s in family.samples}
        assert states == {"size": 5, "checked_out": 1, "checked_in": 0, "overflow": 0}
    engine.dispose()
    del engine
    gc.collect()  # the engine's event listeners form a reference cycle
    (family,) = metrics.pools.collect()
    assert family.samples == []
