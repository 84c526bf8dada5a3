"""Prometheus metrics and request-id access logs of the REST API.

jupyter_server already serves ``/metrics`` from prometheus_client's default registry (with
the server's token unless ``ServerApp.authenticate_prometheus`` is off); Appbook's metrics
join that registry, created once per process however many servers it starts:

``appbook_http_requests_total{route,method,status}``,
``appbook_http_request_duration_seconds{route,method}``
    every Appbook API request; ``route`` is the URL template
    (``/appbook/api/components/{name}/records/{record_id}``), never the raw path; unknown
    paths under ``/appbook/api/`` all count as ``other``.
``appbook_record_operations_total{component,operation}``
    successful record calls through the API: query, read, create, update, delete, import,
    export (only 2xx answers count, so an unknown component cannot mint a label).
``appbook_event_bus_lag_seconds``
    for each record event a subscription held by this server receives, now minus the time
    the writer stamped on it (inside its write transaction, before commit). It covers the
    commit, the bus hop (at once within this process, the outbox poll interval from other
    processes on the embedded bus, Redis pub/sub otherwise) and queueing. Across hosts it
    includes their clock skew.
``appbook_db_pool_connections{state}``
    the SQLAlchemy pool read at scrape time: ``size``, ``checked_out``, ``checked_in``,
    ``overflow``.

:func:`log_with_request_id` wraps the server's access-log function so each API request's
line ends with ``request_id=<id>`` (the id ``X-Request-Id`` carries) and the log record has a
``request_id`` attribute.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool
from tornado.web import RequestHandler

from ..server.engine import Appbook
from ..server.events import EventBus
from .openapi import path_template

__all__ = ["install_metrics", "log_with_request_id"]

log = logging.getLogger(__name__)

RECORDS = "/appbook/api/components/{name}/records"
RECORD_OPERATIONS = {
    (RECORDS, "GET"): "query",
    (RECORDS, "POST"): "create",
    (RECORDS + "/{record_id}", "GET"): "read",
    (RECORDS + "/{record_id}", "PATCH"): "update",
    (RECORDS + "/{record_id}", "DELETE"): "delete",
    (RECORDS + ":import", "POST"): "import",
    (RECORDS + ":export", "GET"): "export",
}
POOL_STATES = ("size", "checked_out", "checked_in", "overflow")
OTHER_ROUTE = "other"

MAX_CACHED_SERIES = 10_000

Observe = Callable[[RequestHandler], None]
SeriesKey = tuple[str, str, int, str | None]
Series = tuple[Counter, Histogram, Counter | None]


class PoolCollector(Collector):
    """``appbook_db_pool_connections{state}``, summed over the live engines of this process."""

    name = "appbook_db_pool_connections"

    def __init__(self) -> None:
        self._engines: weakref.WeakSet[Engine] = weakref.WeakSet()

    def add(self, engine: Engine) -> None:
        """Report ``engine``'s pool until the engine is garbage-collected."""
        self._engines.add(engine)

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        pools = [e.pool for e in list(self._engines) if isinstance(e.pool, QueuePool)]
        if pools:
            # QueuePool.overflow() counts up from -size while the pool fills: only >0 is overflow.
            values = {
                "size": sum(p.size() for p in pools),
                "checked_out": sum(p.checkedout() for p in pools),
                "checked_in": sum(p.checkedin() for p in pools),
                "overflow": sum(max(0, p.overflow()) for p in pools),
            }
            for state in POOL_STATES:
                family.add_metric([state], values[state])
        return [family]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.name,
            "Database connections of the Appbook engine's pool, by state",
            labels=["state"],
        )


@dataclass(frozen=True)
class Metrics:
    """Appbook's metrics, registered once in a registry."""

    requests: Counter
    duration: Histogram
    records: Counter
    event_lag: Histogram
    pools: PoolCollector

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        """Create and register every metric in ``registry``."""
        pools = PoolCollector()
        registry.register(pools)
        return cls(
            requests=Counter(
                "appbook_http_requests",
                "Appbook API requests, by URL template, method and status",
                ["route", "method", "status"],
                registry=registry,
            ),
            duration=Histogram(
                "appbook_http_request_duration_seconds",
                "Time to answer an Appbook API request, by URL template and method",
                ["route", "method"],
                registry=registry,
            ),
            records=Counter(
                "appbook_record_operations",
                "Successful record operations through the API, by component and operation",
                ["component", "operation"],
                registry=registry,
            ),
            event_lag=Histogram(
                "appbook_event_bus_lag_seconds",
                "Record events seen by this server: receipt time minus the writer's timestamp",
                buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=registry,
            ),
            pools=pools,
        )


_lock = threading.Lock()
_metrics: Metrics | None = None


def process_metrics() -> Metrics:
    """The metrics of this process, registered in the default registry on first use."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = Metrics.create(REGISTRY)
        return _metrics


class Observer:
    """The ``appbook_observe`` setting: records one finished request (called by ``on_finish``)."""

    def __init__(self, metrics: Metrics, routes: Iterable[tuple[str, Any]]) -> None:
        self.metrics = metrics
        self._series: dict[SeriesKey, Series] = {}  # labels() takes a lock and builds keys
        self._routes: dict[type, list[tuple[re.Pattern[str], str]]] = {}
        for pattern, handler in routes:
            entry = (re.compile(pattern + "$"), path_template(pattern)[0])
            self._routes.setdefault(handler, []).append(entry)

    def route_of(self, handler: RequestHandler) -> str:
        """The URL template ``handler`` was routed by (``other`` if not an Appbook route)."""
        entries = self._routes.get(type(handler), ())
        if len(entries) == 1:
            return entries[0][1]
        path = handler.request.path
        return next((t for regex, t in entries if regex.search(path)), OTHER_ROUTE)

    def __call__(self, handler: RequestHandler) -> None:
        route = self.route_of(handler)
        method = handler.request.method or "?"
        status = handler.get_status()
        # Only successful calls name their component: those components exist.
        component = handler.path_kwargs.get("name") if 200 <= status < 300 else None
        key = (route, method, status, component)
        series = self._series.get(key) or self._new_series(key)
        series[0].inc()
        series[1].observe(handler.request.request_time())
        if series[2] is not None:
            series[2].inc()

    def _new_series(self, key: SeriesKey) -> Series:
        route, method, status, component = key
        m = self.metrics
        operation = RECORD_OPERATIONS.get((route, method))
        series = (
            m.requests.labels(route, method, str(status)),
            m.duration.labels(route, method),
            m.records.labels(component, operation) if operation and component else None,
        )
        if len(self._series) < MAX_CACHED_SERIES:
            self._series[key] = series
        return series


class EventLagWatcher:
    """Holds a subscription to every record event and observes each one's lag.

    The subscription is opened by :meth:`start` and closed with the bus (``Appbook.close``),
    which ends the reading thread.
    """

    def __init__(self, bus: EventBus, histogram: Histogram) -> None:
        self._bus = bus
        self._histogram = histogram
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Subscribe now (so no later close can miss it) and read in a daemon thread."""
        subscription = self._bus.subscribe()
        self.thread = threading.Thread(
            target=self._read, args=(iter(subscription),), name="appbook-event-lag", daemon=True
        )
        self.thread.start()

    def _read(self, events: Iterator[Any]) -> None:
        try:
            for event in events:
                lag = (datetime.now(UTC) - event.at).total_seconds()
                self._histogram.observe(max(0.0, lag))
        except Exception as exc:  # a metric must never take the server down
            log.warning("event lag metric stopped: %s", exc)


def install_metrics(engine: Appbook) -> Observe:
    """Report ``engine``'s pool and event lag; returns the ``appbook_observe`` callback."""
    from .handlers import routes

    metrics = process_metrics()
    metrics.pools.add(engine.engine)
    try:
        EventLagWatcher(engine.bus, metrics.event_lag).start()
    except Exception as exc:
        log.warning("no event lag metric: cannot subscribe to record events: %s", exc)
    return Observer(metrics, routes)


_request_id: ContextVar[str | None] = ContextVar("appbook_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Appends ``request_id=<id>`` to records logged while an API request is being logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _request_id.get()
        if request_id is not None:
            record.msg = f"{record.getMessage()} request_id={request_id}"
            record.args = None
            record.request_id = request_id
        return True


_filter = RequestIdFilter()


def log_with_request_id(
    log_function: Callable[[RequestHandler], None] | None,
) -> Callable[[RequestHandler], None]:
    """``log_function`` (the ``log_function`` tornado setting), adding request ids."""
    if log_function is None:
        from jupyter_server.log import log_request

        log_function = log_request
    original = log_function

    def log_request_with_id(handler: RequestHandler) -> None:
        request_id = getattr(handler, "request_id", None)
        if request_id is None:
            original(handler)
            return
        logger = getattr(handler, "log", None)
        if isinstance(logger, logging.Logger) and _filter not in logger.filters:
            logger.addFilter(_filter)
        token = _request_id.set(request_id)
        try:
            original(handler)
        finally:
            _request_id.reset(token)

    return log_request_with_id
