"""OAuth 2.0 client credentials for API keys, and the published signing keys."""

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import JSONResponse

from landmark.api.deps import Session, limit
from landmark.core.errors import OAuthError, Unauthorized
from landmark.core.events import Actor, record
from landmark.identity.authn import BASIC_CHALLENGE
from landmark.identity.models import Credential
from landmark.identity.secrets import key_id_from_client_id

router = APIRouter(tags=["oauth"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return {**dict(request.query_params), **fields}


def basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(
            "invalid_client", "Malformed Basic credentials", 401, BASIC_CHALLENGE
        ) from None
    if not sep:
        raise OAuthError("invalid_client", "Malformed Basic credentials", 401, BASIC_CHALLENGE)
    return user, password


def require_client_credentials_grant(fields: dict[str, str]) -> None:
    grant = fields.get("grant_type")
    if not grant:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant != "client_credentials":
        raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")


@router.post("/oauth/token")
async def token(request: Request, session: Session) -> JSONResponse:
    """Exchange an API key's client id and secret (Basic or form fields) for a 5-minute JWT."""
    fields = await form_fields(request)
    require_client_credentials_grant(fields)
    from_header = basic_credentials(request)
    client_id, secret = from_header or (
        fields.get("client_id", ""),
        fields.get("client_secret", ""),
    )
    key_id = key_id_from_client_id(client_id)
    if key_id is None or not secret:
        raise OAuthError(
            "invalid_client", "Unknown client or bad client secret", 401, BASIC_CHALLENGE
        )
    authenticator = request.app.state.authenticator
    try:
        principal = await authenticator.secret_principal(session, key_id, secret, ("api_key",))
    except Unauthorized as exc:
        await _record_failure(session, key_id)
        raise OAuthError(
            "invalid_client", f"Client authentication failed: {exc.message}", 401, BASIC_CHALLENGE
        ) from None
    await limit(request, principal)
    settings = request.app.state.settings
    access_token = await request.app.state.keyring.sign(
        session,
        {
            "sub": str(principal.user_uuid),
            "cid": key_id,
            "acc": principal.account_id,
            "client_id": client_id,
            "scope": " ".join(sorted(principal.permissions)),
        },
        settings.base_url,
        settings.access_token_seconds,
    )
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": settings.access_token_seconds,
        "scope": " ".join(sorted(principal.permissions)),
    }
    return JSONResponse(body, headers=NO_STORE)


async def _record_failure(session: AsyncSession, key_id: str) -> None:
    """A failed client sign-in goes to the audit trail of the key's account."""
    credential = await session.scalar(
        select(Credential).where(Credential.key_id == key_id, Credential.kind == "api_key")
    )
    if credential is not None:
        await record(
            session,
            credential.account_id,
            "api_key.sign_in_failed",
            "credential",
            credential.id,
            Actor(credential.user_id),
        )
        await session.commit()


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    """The public keys that verify Landmark's access tokens."""
    async with request.app.state.sessions() as session:
        await request.app.state.keyring.load(session)
    return JSONResponse(
        {"keys": request.app.state.keyring.jwks}, headers={"Cache-Control": "max-age=60"}
    )


@router.get("/.well-known/oauth-authorization-server")
async def metadata(request: Request) -> dict[str, Any]:
    """RFC 8414 metadata."""
    base = request.app.state.settings.base_url.rstrip("/")
    return {
        "issuer": base,
        "token_endpoint": f"{base}/oauth/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }
