"""FastAPI dependencies shared by every face: the database session and the signed-in principal."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBearer, OAuth2
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.identity.authn import Principal
from landmark.identity.permissions import Permission
from landmark.settings import Settings

# Declared so that /docs shows every way of signing in and its Authorize dialog can use each.
client_credentials = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token", scopes={p.value: p.name.title() for p in Permission}
        )
    ),
    scheme_name="clientCredentials",
    description="API key client id and secret, exchanged at /oauth/token for a 5-minute JWT.",
    auto_error=False,
)
bearer = HTTPBearer(
    scheme_name="bearerToken",
    description="A personal, technical-user or Upsolver token (lmk_...), or a JWT access token.",
    auto_error=False,
)
basic = HTTPBasic(
    scheme_name="basicAuth",
    description="Email and password. Also fill in csrfHeader (X-Requested-By, any value).",
    auto_error=False,
)
csrf_header = APIKeyHeader(
    name="X-Requested-By",
    scheme_name="csrfHeader",
    auto_error=False,
    description="Required with Basic (CSRF protection); any value.",
)
account_header = APIKeyHeader(
    name="X-Xurrent-Account",
    scheme_name="accountHeader",
    auto_error=False,
    description="The account to act in, for a user of several accounts signed in with Basic.",
)


async def _declared(
    _a: Annotated[Any, Depends(client_credentials)],
    _b: Annotated[Any, Depends(bearer)],
    _c: Annotated[Any, Depends(csrf_header)],
    _d: Annotated[Any, Depends(account_header)],
    _e: Annotated[Any, Depends(basic)],
) -> None:
    """Only documents the schemes; authentication itself reads the headers (see `principal`)."""


async def db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(db)]


def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(settings)]


async def limit(request: Request, principal: Principal) -> Principal:
    """Count the request against the credential's rate limit and remember who called."""
    request.state.account_id = principal.account_id
    request.state.credential_id = principal.credential_id
    quota = await request.app.state.rate_limiter.hit(
        principal.rate_subject, principal.rate_limit, principal.rate_window
    )
    request.state.quota_headers = quota.headers()
    return principal


async def signed_in(
    request: Request, session: Session, _: Annotated[None, Depends(_declared)]
) -> Principal:
    """Who is calling, without counting the request against their rate limit."""
    return await request.app.state.authenticator.authenticate(  # type: ignore[no-any-return]
        request.headers, session
    )


SignedIn = Annotated[Principal, Depends(signed_in)]


async def principal(request: Request, found: SignedIn) -> Principal:
    return await limit(request, found)


CurrentPrincipal = Annotated[Principal, Depends(principal)]


def require(permission: Permission) -> Any:
    async def check(who: CurrentPrincipal) -> Principal:
        who.require(permission)
        return who

    return Depends(check)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
