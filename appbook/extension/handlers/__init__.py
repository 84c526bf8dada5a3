"""The REST API under ``/appbook/api/``: each module ends with its URL table."""

from __future__ import annotations

from typing import Any

from . import components, health, openapi, records

routes: list[tuple[str, Any]] = [
    *health.routes,
    *components.routes,
    *records.routes,
    *openapi.routes,
]
