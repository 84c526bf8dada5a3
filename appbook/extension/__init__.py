"""The Jupyter server extension: the engine behind jupyter_server (REST API in issue 3)."""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import AppbookApp

    return [{"module": "appbook.extension", "app": AppbookApp}]
