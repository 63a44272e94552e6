"""LeanIX MTM (Multi-Tenancy Manager): the token endpoint, API tokens, technical users, users."""

from datetime import UTC, date, datetime, time
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from landmark.api.deps import CurrentPrincipal, Session, SettingsDep, iso, limit
from landmark.api.leanix.envelope import ok
from landmark.api.platform.oauth import (
    NO_STORE,
    basic_credentials,
    form_fields,
    require_client_credentials_grant,
)
from landmark.core.errors import NotFound, OAuthError, Unauthorized
from landmark.identity import service
from landmark.identity.authn import BASIC_CHALLENGE, Principal
from landmark.identity.models import Credential, Membership, User
from landmark.identity.permissions import LEANIX_ROLE, Permission, Role

router = APIRouter(prefix="/services/mtm/v1", tags=["leanix-mtm"])
KINDS = ("personal",)


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ApiTokenCreate(Lenient):
    name: str = Field(max_length=200)
    description: str | None = Field(None, max_length=2000)
    expiry: datetime | date | None = None


class TechnicalUserCreate(Lenient):
    userName: str = Field(max_length=200)
    description: str | None = Field(None, max_length=2000)
    role: str | None = None
    permission: dict[str, Any] | None = None
    expiry: datetime | date | None = None


class Invite(Lenient):
    user: dict[str, Any]
    workspace: dict[str, Any] | None = None
    permission: dict[str, Any] | None = None
    message: str | None = None


def _expiry(value: datetime | date | None) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.max, UTC)
    return None


def _leanix_role(role: str) -> str:
    return LEANIX_ROLE[Role(role)]


@router.post("/oauth2/token")
async def token(request: Request, session: Session) -> JSONResponse:
    """HTTP Basic `apitoken:<token>` and grant_type=client_credentials → a LeanIX-shaped JWT."""
    fields = await form_fields(request)
    require_client_credentials_grant(fields)
    credentials = basic_credentials(request)
    if credentials is None or credentials[0] != "apitoken":
        raise OAuthError(
            "invalid_client",
            "Use HTTP Basic with user 'apitoken' and your API token",
            401,
            BASIC_CHALLENGE,
        )
    authenticator = request.app.state.authenticator
    try:
        principal = await authenticator.token_principal(session, credentials[1])
    except Unauthorized as exc:
        raise OAuthError("invalid_client", exc.message, 401, BASIC_CHALLENGE) from None
    if principal.credential_id is None or principal.credential_kind == "api_key":
        raise OAuthError("invalid_client", "An API token is required", 401, BASIC_CHALLENGE)
    await limit(request, principal)
    settings = request.app.state.settings
    claims = {
        "sub": str(principal.user_uuid),
        "cid": principal.credential_id,
        "acc": principal.account_id,
        **principal.leanix_claims(settings.base_url.rstrip("/")),
    }
    access_token = await request.app.state.keyring.sign(
        session, claims, settings.base_url, settings.mtm_token_seconds
    )
    body = {
        "scope": "",
        "expired": False,
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": settings.mtm_token_seconds,
    }
    return JSONResponse(body, headers=NO_STORE)


def _api_token(who: Principal, row: Credential, secret: str | None = None) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "token": secret,
        "name": row.name,
        "internal": False,
        "userId": str(who.user_uuid),
        "workspaceId": str(who.account_uuid),
        "expiry": iso(row.expires_at),
        "scopes": row.scopes,
        "description": row.description,
        "creatorId": str(who.user_uuid),
        "lastUsedAt": iso(row.last_used_at),
        "createdAt": iso(row.created_at),
    }


@router.get("/apiTokens")
async def list_api_tokens(who: CurrentPrincipal, session: Session) -> dict[str, Any]:
    """Your own API tokens; not even an admin sees another user's."""
    rows = await service.list_own_tokens(session, who, KINDS)
    return ok([_api_token(who, r) for r in rows], "ApiToken", len(rows))


@router.post("/apiTokens")
async def create_api_token(
    body: ApiTokenCreate, who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> dict[str, Any]:
    issued = await service.issue_token(
        session,
        settings,
        who,
        kind="personal",
        name=body.name,
        description=body.description,
        expires_at=_expiry(body.expiry),
    )
    await session.commit()
    return ok(_api_token(who, issued.credential, issued.secret), "ApiToken")


@router.get("/apiTokens/{token_id}")
async def get_api_token(token_id: str, who: CurrentPrincipal, session: Session) -> dict[str, Any]:
    return ok(
        _api_token(who, await service.get_own_token(session, who, token_id, KINDS)), "ApiToken"
    )


@router.delete("/apiTokens/{token_id}")
async def delete_api_token(
    token_id: str, who: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    await service.revoke(session, who, await service.get_own_token(session, who, token_id, KINDS))
    await session.commit()
    return ok(None, "ApiToken")


def _technical_user(
    who: Principal, user: User, membership: Membership, secret: str | None = None
) -> dict[str, Any]:
    out = {
        "id": str(user.id),
        "userName": user.name,
        "description": user.description,
        "role": _leanix_role(membership.role),
        "permission": {
            "role": _leanix_role(membership.role),
            "workspaceId": str(who.account_uuid),
            "status": membership.status.upper(),
        },
        "status": membership.status.upper(),
        "expiry": iso(user.expires_at),
        "createdAt": iso(user.created_at),
    }
    if secret is not None:
        out["apiToken"] = secret
    return out


def _user_id(value: str) -> int:
    if not value.isdigit():
        raise NotFound("Technical user not found")
    return int(value)


@router.get("/technicalusers")
async def list_technical_users(who: CurrentPrincipal, session: Session) -> dict[str, Any]:
    who.require(Permission.USERS)
    rows, total = await service.list_members(session, who, "technical")
    active = [(u, m) for u, m in rows if m.status == "active"]
    return ok([_technical_user(who, u, m) for u, m in active], "TechnicalUser", len(active))


@router.post("/technicalusers")
async def create_technical_user(
    body: TechnicalUserCreate, who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> dict[str, Any]:
    """A technical user with its API token, shown in this response only."""
    role = body.role or (body.permission or {}).get("role") or "MEMBER"
    user, membership, issued = await service.create_technical_user(
        session,
        settings,
        who,
        name=body.userName,
        role=str(role),
        description=body.description,
        expires_at=_expiry(body.expiry),
    )
    await session.commit()
    return ok(_technical_user(who, user, membership, issued.secret), "TechnicalUser")


@router.get("/technicalusers/{user_id}")
async def get_technical_user(
    user_id: str, who: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    who.require(Permission.USERS)
    user, membership = await service.get_member(session, who, _user_id(user_id), "technical")
    return ok(_technical_user(who, user, membership), "TechnicalUser")


@router.delete("/technicalusers/{user_id}")
async def delete_technical_user(
    user_id: str, who: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    await service.delete_technical_user(session, who, _user_id(user_id))
    await session.commit()
    return ok(None, "TechnicalUser")


@router.put("/technicalusers/{user_id}/replace_token")
async def replace_token(
    user_id: str, who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> dict[str, Any]:
    """A new API token for the technical user; the old one stops working at once."""
    issued = await service.replace_technical_token(session, settings, who, _user_id(user_id))
    await session.commit()
    user, membership = await service.get_member(session, who, _user_id(user_id), "technical")
    return ok(_technical_user(who, user, membership, issued.secret), "TechnicalUser")


@router.get("/technicalusers/{user_id}/changelog")
async def changelog(user_id: str, who: CurrentPrincipal, session: Session) -> dict[str, Any]:
    who.require(Permission.USERS)
    user, _ = await service.get_member(session, who, _user_id(user_id), "technical")
    events = await service.audit_trail(
        session, who, subject_type="technical_user", subject_id=str(user.id), limit=1000
    )
    data = [
        {
            "id": str(e.id),
            "action": e.type.split(".", 1)[1].upper(),
            "createdAt": iso(e.created_at),
            "actorId": e.actor_user_id,
            "data": e.data,
        }
        for e in events
    ]
    return ok(data, "TechnicalUserChangeLog", len(data))


def _workspace(who: Principal, workspace_id: str) -> None:
    if workspace_id not in (str(who.account_uuid), who.account_id):
        raise NotFound("Workspace not found")


def _member(who: Principal, user: User, membership: Membership) -> dict[str, Any]:
    return {
        "id": str(user.uuid),
        "userName": user.email,
        "email": user.email,
        "displayName": user.name,
        "role": _leanix_role(membership.role),
        "status": membership.status.upper(),
        "permission": {
            "workspaceId": str(who.account_uuid),
            "role": _leanix_role(membership.role),
            "status": membership.status.upper(),
        },
    }


@router.get("/workspaces/{workspace_id}/users")
async def workspace_users(
    workspace_id: str,
    who: CurrentPrincipal,
    session: Session,
    page: int = Query(1, ge=1),
    size: int = Query(100, ge=1, le=100),
) -> dict[str, Any]:
    _workspace(who, workspace_id)
    who.require(Permission.READ)
    rows, total = await service.list_members(session, who, "person", (page - 1) * size, size)
    return ok([_member(who, u, m) for u, m in rows], "User", total)


@router.post("/idm/invite")
async def invite(body: Invite, who: CurrentPrincipal, session: Session) -> dict[str, Any]:
    """Invite a person (new or existing) into the workspace with a role."""
    if body.workspace and body.workspace.get("id"):
        _workspace(who, str(body.workspace["id"]))
    role = (body.permission or {}).get("role", "VIEWER")
    name = " ".join(str(body.user.get(k, "")) for k in ("firstName", "lastName")).strip() or None
    user, membership = await service.invite_user(session, who, body.user.get("email"), role, name)
    await session.commit()
    return ok(_member(who, user, membership), "User")
