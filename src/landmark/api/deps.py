"""FastAPI dependencies shared by every face: the database session and the signed-in principal."""

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.routing import APIRoute
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


SCHEMES = (client_credentials, bearer, csrf_header, account_header, basic)


def document_sign_in(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Show the ways of signing in in /openapi.json, so that /docs can authorize every call.

    Written into the schema once instead of declared as security dependencies, which FastAPI
    would solve on every request for nothing (authentication reads the headers itself).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        for scheme in SCHEMES:
            components[scheme.scheme_name] = jsonable_encoder(
                scheme.model, by_alias=True, exclude_none=True
            )
        requirement: list[dict[str, list[str]]] = [{s.scheme_name: []} for s in SCHEMES]
        routes = [route for router in routers for route in router.routes]
        for route in routes:
            if isinstance(route, APIRoute) and _signs_in(route.dependant):
                for method in route.methods or ():
                    schema["paths"][route.path_format][method.lower()]["security"] = requirement
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _signs_in(dependant: Any) -> bool:
    return any(
        d.call is signed_in or getattr(d.call, "signs_in", False) or _signs_in(d)
        for d in dependant.dependencies
    )


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


async def signed_in(request: Request, session: Session) -> Principal:
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


def allowed(permission: Permission | None) -> Any:
    """`CurrentPrincipal` plus `require(permission)` (when given) as one dependency, for the
    busiest reads and GraphQL.

    The same checks in the same order, but FastAPI solves one plain dependency instead of four
    (one of them a generator, with its exit stack), and the session lives only while the
    credential is checked (a cached check does not use it)."""

    async def check(request: Request) -> Principal:
        async with request.app.state.sessions() as session:
            found = await request.app.state.authenticator.authenticate(request.headers, session)
        who = await limit(request, found)
        if permission is not None:
            who.require(permission)
        return who

    check.signs_in = True  # type: ignore[attr-defined]  # for document_sign_in
    return Depends(check)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
