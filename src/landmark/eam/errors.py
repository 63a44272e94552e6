"""The error of a fact-sheet write, shaped like LeanIX's GraphQL error extensions."""

from typing import Any

from landmark.core.errors import ValidationFailed

MODEL_COMPLIANT = "MODEL_COMPLIANT"
STALE_REV = "STALE_REV"
NOT_FOUND = "NOT_FOUND"
INVALID_PATCH = "INVALID_PATCH"


class PatchError(ValidationFailed):
    """A patch (or the write as a whole) that cannot be applied; nothing was changed.

    `message` starts with a LeanIX-style code (`[FS_VALIDATION_...]`), `object_path` is the
    patch path (or field) at fault, `object_id` the fact sheet or relation concerned.
    """

    def __init__(
        self,
        message: str,
        object_path: str,
        error_type: str = MODEL_COMPLIANT,
        object_id: Any = None,
        status: int = 422,
    ) -> None:
        super().__init__(message, [(object_path, message)])
        self.object_path = object_path
        self.error_type = error_type
        self.object_id = str(object_id) if object_id is not None else None
        self.status = status


def invalid(path: str, code: str, message: str, object_id: Any = None) -> PatchError:
    return PatchError(f"[FS_VALIDATION_{code}] {message}", path, MODEL_COMPLIANT, object_id)


def not_found(path: str, what: str, ident: Any) -> PatchError:
    return PatchError(
        f"[FS_VALIDATION_NOT_FOUND] {what} {ident} not found", path, NOT_FOUND, ident, 404
    )
