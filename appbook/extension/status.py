"""The one place where engine errors become HTTP statuses."""

from __future__ import annotations

from ..server.dataflows import DataflowFailed
from ..server.errors import (
    AppbookError,
    Conflict,
    CorruptFile,
    DefinitionError,
    Forbidden,
    KeyFileError,
    NotFound,
    OutboundError,
    OutboundRefused,
    PayloadTooLarge,
    PublishError,
    QueryError,
    ServiceUnavailable,
    ValidationError,
)
from ..server.expressions import ExpressionError
from ..server.schema import SchemaOutdated
from ..server.workflows.webhooks import MalformedBody, RateLimited, WebhookRefused

# Order matters: the first class an error is an instance of wins.
STATUS: tuple[tuple[type[AppbookError], int], ...] = (
    (DefinitionError, 422),
    (ValidationError, 422),
    (QueryError, 400),
    (ExpressionError, 422),
    (NotFound, 404),
    (Conflict, 409),
    (PublishError, 409),
    (Forbidden, 403),
    (PayloadTooLarge, 413),
    (ServiceUnavailable, 503),
    (SchemaOutdated, 503),
    (KeyFileError, 500),
    (CorruptFile, 500),
    (OutboundRefused, 403),  # before OutboundError: a refused destination is policy
    (OutboundError, 502),
    (DataflowFailed, 422),  # the maker's dataflow or script failed on this input
    (WebhookRefused, 401),  # a webhook request without a valid signature
    (RateLimited, 429),
    (MalformedBody, 400),
)


def status_of(error: AppbookError) -> int:
    """The HTTP status for an engine error (500 for one not listed)."""
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 500
