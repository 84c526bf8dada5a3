"""Appbook: a low-code application platform that lives inside Jupyter.

>>> import appbook
>>> app = appbook.connect()
>>> app["invoices"].query(where={"amount": {"gt": 10}}, order_by=["-due_date"], limit=50)
"""

from __future__ import annotations

from .kernels.client import connect
from .server.errors import (
    AppbookError,
    Conflict,
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

__version__ = "0.1.0"

__all__ = [
    "AppbookError",
    "Conflict",
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
