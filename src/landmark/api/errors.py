"""Render every error in the dialect of the API that was called. Never HTML, never a trace.

Xurrent (/v1):      {"message": ..., "errors": [[field, message], ...]}
LeanIX (/services): {"status": "ERROR", "message": ..., "errors": [{"value", "messages"}]}
Token endpoints:    RFC 6749 §5.2 {"error", "error_description"} with Cache-Control: no-store
Everything else:    RFC 9457 application/problem+json
"""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from landmark.core.errors import (
    DomainError,
    OAuthError,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)

TOKEN_PATHS = ("/oauth/token", "/services/mtm/v1/oauth2/token")


def dialect_for(path: str) -> str:
    if path in TOKEN_PATHS:
        return "oauth"
    if path == "/v1" or path.startswith("/v1/"):
        return "xurrent"
    if path.startswith("/services/"):
        return "leanix"
    return "problem"


def render(path: str, error: DomainError) -> JSONResponse:
    status = error.status
    dialect = dialect_for(path)
    headers: dict[str, str] = {}
    if isinstance(error, Unauthorized) and dialect != "oauth":
        headers["WWW-Authenticate"] = error.challenge
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
        quota = getattr(error, "quota", None)
        if quota is not None:
            headers.update(quota.headers())
    body: dict[str, Any]
    media_type = "application/json"
    if dialect == "oauth":
        code = error.error if isinstance(error, OAuthError) else _oauth_code(status)
        body = {"error": code, "error_description": error.message}
        headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        if isinstance(error, OAuthError) and error.challenge:
            headers["WWW-Authenticate"] = error.challenge
    elif dialect == "xurrent":
        body = {"message": error.message}
        if error.errors:
            body["errors"] = [[field, message] for field, message in error.errors]
    elif dialect == "leanix":
        body = {
            "status": "ERROR",
            "type": "ErrorResponse",
            "message": error.message,
            "errors": [{"value": f, "messages": [m]} for f, m in error.errors]
            or [{"value": None, "messages": [error.message]}],
        }
    else:
        media_type = "application/problem+json"
        body = {
            "type": f"/problems/{error.code}",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": error.message,
        }
        if error.errors:
            body["errors"] = [{"field": f, "detail": m} for f, m in error.errors]
    return JSONResponse(body, status_code=status, headers=headers, media_type=media_type)


def _oauth_code(status: int) -> str:
    return {401: "invalid_client", 429: "slow_down"}.get(status, "invalid_request")


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "body")


class _HTTPError(DomainError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = HTTPStatus(status).phrase.lower().replace(" ", "_")


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return render(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [(_field(tuple(e["loc"])), e["msg"]) for e in exc.errors()]
        in_body = any(e["loc"] and e["loc"][0] == "body" for e in exc.errors())
        error = ValidationFailed("Validation Failed", errors) if in_body else _bad_params(errors)
        return render(request.url.path, error)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(_request: Request, _exc: ClientDisconnect) -> Response:
        """The client hung up before its request's body arrived (a load generator stopping, a
        cancelled upload): nothing to answer and nothing went wrong here. 499 as nginx logs it."""
        return Response(status_code=499)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and message == "Not Found":
            message = f"No such route: {request.method} {request.url.path}"
        response = render(request.url.path, _HTTPError(exc.status_code, message))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response


def internal_error(path: str) -> JSONResponse:
    return render(path, _HTTPError(500, "Internal server error"))


def _bad_params(errors: list[tuple[str, str]]) -> DomainError:
    from landmark.core.errors import BadRequest

    return BadRequest("Invalid parameters: " + "; ".join(f"{f}: {m}" for f, m in errors), errors)
