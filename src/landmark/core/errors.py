"""Typed domain errors. Each API face renders them in its own dialect (see api/errors.py)."""

from collections.abc import Sequence


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)  # (field, message) pairs


class BadRequest(DomainError):
    pass


class InvalidParameter(BadRequest):
    """A query parameter the API cannot use; `param` names it (also as the `errors` field)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message, [(param, message)])
        self.param = param


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unauthorized(DomainError):
    """No valid credential. `challenge` becomes the WWW-Authenticate header."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str, challenge: str = 'Bearer realm="landmark"') -> None:
        super().__init__(message)
        self.challenge = challenge


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OAuthError(DomainError):
    """An RFC 6749 §5.2 error at a token endpoint."""

    def __init__(
        self, error: str, description: str, status: int = 400, challenge: str = ""
    ) -> None:
        super().__init__(description)
        self.error = error
        self.status = status
        self.challenge = challenge
