"""The native identity API under /api/v1 (errors as RFC 9457 problem JSON)."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from landmark.api.deps import CurrentPrincipal, Session, SettingsDep, require
from landmark.api.platform import render
from landmark.identity import service
from landmark.identity.models import Account
from landmark.identity.permissions import Permission

router = APIRouter(prefix="/api/v1", tags=["identity"])


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(Body):
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    password: str = Field(min_length=8, max_length=1000)
    role: str = "member"
    permissions: list[str] = []


class UserUpdate(Body):
    name: str | None = Field(None, max_length=200)
    password: str | None = Field(None, min_length=8, max_length=1000)
    role: str | None = None
    permissions: list[str] | None = None
    status: str | None = None


class TokenCreate(Body):
    name: str = Field(max_length=200)
    expires_at: datetime | None = None
    scopes: list[str] | None = None


class ApiKeyCreate(Body):
    name: str = Field(max_length=200)
    privileges: list[str] | None = None


class ApiKeyUpdate(Body):
    name: str | None = Field(None, max_length=200)
    enabled: bool | None = None
    privileges: list[str] | None = None


class AccountUpdate(Body):
    name: str | None = Field(None, max_length=200)
    rate_limit: int | None = Field(None, ge=1)
    rate_limit_window: int | None = Field(None, ge=1)


def _changes(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


@router.get("/me")
async def me(who: CurrentPrincipal) -> dict[str, Any]:
    """The signed-in user, the account the request acts in, and what it may do."""
    return render.me(who)


@router.get("/account")
async def get_account(who: CurrentPrincipal, session: Session) -> dict[str, Any]:
    return render.account(await session.get_one(Account, who.account_id))


@router.patch("/account")
async def patch_account(
    body: AccountUpdate, who: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    account = await service.update_account(session, who, _changes(body))
    await session.commit()
    return render.account(account)


@router.get("/users", dependencies=[require(Permission.READ)])
async def list_users(
    who: CurrentPrincipal,
    session: Session,
    response: Response,
    page: int = Query(1, ge=1),
    per_page: int = Query(100, ge=1, le=100),
) -> list[dict[str, Any]]:
    rows, total = await service.list_members(
        session, who, "person", (page - 1) * per_page, per_page
    )
    response.headers["X-Total-Count"] = str(total)
    return [render.user(u, m) for u, m in rows]


@router.post("/users", status_code=201, dependencies=[require(Permission.USERS)])
async def create_user(body: UserCreate, who: CurrentPrincipal, session: Session) -> dict[str, Any]:
    user, membership = await service.create_user(
        session, who.account_id, who.actor, **_changes(body)
    )
    await session.commit()
    return render.user(user, membership)


@router.get("/users/{user_id}", dependencies=[require(Permission.READ)])
async def get_user(user_id: int, who: CurrentPrincipal, session: Session) -> dict[str, Any]:
    return render.user(*await service.get_member(session, who, user_id))


@router.patch("/users/{user_id}")
async def patch_user(
    user_id: int, body: UserUpdate, who: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    user, membership = await service.update_member(session, who, user_id, _changes(body))
    await session.commit()
    return render.user(user, membership)


@router.get("/tokens")
async def list_tokens(who: CurrentPrincipal, session: Session) -> list[dict[str, Any]]:
    """Your own personal tokens (nobody else sees them, not even an admin)."""
    return [render.token(t) for t in await service.list_own_tokens(session, who, ("personal",))]


@router.post("/tokens", status_code=201)
async def create_token(
    body: TokenCreate, who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> dict[str, Any]:
    """A personal token; its value is in this response only."""
    issued = await service.issue_token(session, settings, who, kind="personal", **_changes(body))
    await session.commit()
    return render.token(issued.credential, issued.secret)


@router.delete("/tokens/{token_id}", status_code=204)
async def delete_token(token_id: str, who: CurrentPrincipal, session: Session) -> Response:
    await service.revoke(
        session, who, await service.get_own_token(session, who, token_id, ("personal",))
    )
    await session.commit()
    return Response(status_code=204)


@router.get("/api-keys")
async def list_api_keys(
    who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> list[dict[str, Any]]:
    return [render.api_key(k, settings.base_url) for k in await service.list_api_keys(session, who)]


@router.post("/api-keys", status_code=201)
async def create_api_key(
    body: ApiKeyCreate, who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> dict[str, Any]:
    """A client id and secret; the secret is in this response only."""
    issued = await service.create_api_key(session, settings, who, body.name, body.privileges)
    await session.commit()
    return render.api_key(issued.credential, settings.base_url, issued.secret)


@router.get("/api-keys/{key_id}")
async def get_api_key(
    key_id: str, who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> dict[str, Any]:
    return render.api_key(await service.get_api_key(session, who, key_id), settings.base_url)


@router.patch("/api-keys/{key_id}")
async def patch_api_key(
    key_id: str, body: ApiKeyUpdate, who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> dict[str, Any]:
    key = await service.update_api_key(session, who, key_id, _changes(body))
    await session.commit()
    return render.api_key(key, settings.base_url)


@router.delete("/api-keys/{key_id}", status_code=204)
async def delete_api_key(key_id: str, who: CurrentPrincipal, session: Session) -> Response:
    await service.delete_api_key(session, who, key_id)
    await session.commit()
    return Response(status_code=204)


@router.post("/api-keys/{key_id}/regenerate")
async def regenerate_api_key(
    key_id: str, who: CurrentPrincipal, session: Session, settings: SettingsDep
) -> dict[str, Any]:
    """A new client secret, in this response only; the old one stops working at once."""
    issued = await service.regenerate_api_key(session, settings, who, key_id)
    await session.commit()
    return render.api_key(issued.credential, settings.base_url, issued.secret)


@router.get("/audit")
async def audit(
    who: CurrentPrincipal,
    session: Session,
    after: int = Query(0, ge=0, description="Only events after this sequence number"),
    limit: int = Query(100, ge=1, le=1000),
    subject_type: str | None = None,
    subject_id: str | None = None,
) -> list[dict[str, Any]]:
    """The account's audit trail, oldest first; page with `after` = the last `seq` seen."""
    events = await service.audit_trail(
        session, who, after=after, limit=limit, subject_type=subject_type, subject_id=subject_id
    )
    return [render.event(e) for e in events]
