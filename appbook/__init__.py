"""Appbook: a low-code application platform that lives inside Jupyter.

>>> import appbook
>>> app = appbook.connect()
>>> app["invoices"].query(where={"amount": {"gt": 10}}, order_by=["-due_date"], limit=50)
"""

from __future__ import annotations

import typing

from .kernels.client import connect
from .server.errors import (
    AppbookError,
    Conflict,
    DataflowFailed,
    DefinitionError,
    DestructiveChange,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PublishError,
    QueryError,
    ServiceUnavailable,
    ValidationError,
)

if typing.TYPE_CHECKING:
    from .server.dataflows import DataflowResult

__version__ = "0.1.0"

__all__ = [
    "AppbookError",
    "Conflict",
    "DataflowFailed",
    "DataflowResult",
    "DefinitionError",
    "DestructiveChange",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "PublishError",
    "QueryError",
    "ServiceUnavailable",
    "ValidationError",
    "__version__",
    "connect",
]


def __getattr__(name: str) -> typing.Any:
    # DataflowResult is imported on first use: the dataflow runner loads the definitions
    # and the expression evaluator, which ``import appbook`` alone does not need.
    if name == "DataflowResult":
        from .server.dataflows import DataflowResult

        return DataflowResult
    raise AttributeError(f"module 'appbook' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "DataflowResult"})
