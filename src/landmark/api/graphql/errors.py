"""GraphQL errors in the LeanIX shape: `message`, `path`, `extensions {errorType, objectId, ...}`.

The domain raises typed errors (core/errors.py); here each becomes one entry of `errors[]`. An
unexpected exception is logged and shown as "Internal server error": never a trace.
"""

import logging
from typing import Any

from graphql import GraphQLError

from landmark.api.graphql.limits import LimitExceeded
from landmark.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)

log = logging.getLogger(__name__)

# errorType of each domain error; a domain error may also carry its own (`error_type`).
ERROR_TYPES: list[tuple[type[Exception], str]] = [
    (NotFound, "NOT_FOUND"),
    (Conflict, "CONFLICT"),
    (Forbidden, "ACCESS_DENIED"),
    (Unauthorized, "UNAUTHORIZED"),
    (RateLimited, "RATE_LIMITED"),
    (ValidationFailed, "MODEL_COMPLIANT"),
    (LimitExceeded, "QUERY_LIMIT"),
    (DomainError, "BAD_REQUEST"),
]


class ObjectError(DomainError):
    """A domain error about one object (the fact sheet a mutation worked on)."""

    def __init__(self, cause: DomainError, object_id: Any) -> None:
        super().__init__(cause.message, cause.errors)
        self.cause = cause
        self.object_id = object_id


def _error_type(error: Exception) -> str:
    own = getattr(error, "error_type", None)
    if own:
        return str(own)
    return next(name for kind, name in ERROR_TYPES if isinstance(error, kind))


def _extensions(error: Exception) -> dict[str, Any]:
    object_id = None
    if isinstance(error, ObjectError):
        object_id, error = error.object_id, error.cause
    object_path = getattr(error, "object_path", None)
    if object_path is None and isinstance(error, DomainError) and error.errors:
        object_path = "/" + error.errors[0][0].lstrip("/")
    return {
        "errorType": _error_type(error),
        "entityType": "FACT_SHEET",
        "objectId": str(getattr(error, "object_id", None) or object_id or "") or None,
        "objectPath": object_path,
    }


def format_error(error: GraphQLError) -> dict[str, Any]:
    """One entry of `errors[]`."""
    original = error.original_error
    out: dict[str, Any] = {"message": error.message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    out["path"] = error.path
    if isinstance(original, DomainError | LimitExceeded):
        out["message"] = original.message if isinstance(original, DomainError) else str(original)
        out["extensions"] = _extensions(original)
        if isinstance(original, DomainError) and original.errors and len(original.errors) > 1:
            out["extensions"]["errors"] = [{"path": f, "message": m} for f, m in original.errors]
    elif original is not None and not isinstance(original, GraphQLError):
        log.error("GraphQL resolver failed", exc_info=original)
        out["message"] = "Internal server error"
        out["extensions"] = {"errorType": "INTERNAL_ERROR"}
    else:  # syntax, schema validation, variables that do not fit their types
        out["extensions"] = {"errorType": "GRAPHQL_VALIDATION", **(error.extensions or {})}
    return out


def request_error(message: str, error_type: str = "BAD_REQUEST") -> dict[str, Any]:
    """An error about the request itself (no query, bad JSON, a mutation over GET)."""
    return {"message": message, "path": None, "extensions": {"errorType": error_type}}
