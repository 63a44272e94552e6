"""Upsolver-style API tokens: made with email and password headers, used as a raw Authorization."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from landmark.api.deps import Session, SettingsDep, iso, limit
from landmark.identity import service
from landmark.identity.authn import Principal, account_hint
from landmark.identity.models import Credential

router = APIRouter(prefix="/api-tokens", tags=["upsolver"])
KINDS = ("upsolver",)


class DisplayData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(max_length=200)
    description: str | None = Field(None, max_length=2000)


class TokenRequest(BaseModel):
    displayData: DisplayData


async def upsolver_principal(
    request: Request,
    session: Session,
    x_api_email: Annotated[str | None, Header()] = None,
    x_api_password: Annotated[str | None, Header()] = None,
) -> Principal:
    """Email and password headers (the documented way to make a token), else any credential."""
    authenticator = request.app.state.authenticator
    if x_api_email is not None or x_api_password is not None:
        found = await authenticator.password_principal(
            session, x_api_email or "", x_api_password or "", account_hint(request.headers)
        )
    else:
        found = await authenticator.authenticate(request.headers, session)
    return await limit(request, found)


Caller = Annotated[Principal, Depends(upsolver_principal)]


def _render(who: Principal, row: Credential, secret: str | None = None) -> dict[str, Any]:
    creator = f"{who.user_name} ({who.user_email})" if who.user_email else who.user_name
    out: dict[str, Any] = {
        "id": str(row.id),
        "organizationId": str(who.account_uuid),
        "displayData": {
            "name": row.name,
            "description": row.description,
            "statusMessage": "ok",
            "statusType": "ok",
            "creationTime": iso(row.created_at),
            "createdBy": creator,
        },
        "createdBy": who.user_email or who.user_name,
    }
    if secret is not None:
        out["apiToken"] = secret
    return out


@router.post("/")
async def create(
    body: TokenRequest, who: Caller, session: Session, settings: SettingsDep
) -> dict[str, Any]:
    """Create an API token; `apiToken` is in this response only."""
    issued = await service.issue_token(
        session,
        settings,
        who,
        kind="upsolver",
        name=body.displayData.name,
        description=body.displayData.description,
    )
    await session.commit()
    return _render(who, issued.credential, issued.secret)


@router.get("/")
async def list_tokens(who: Caller, session: Session) -> list[dict[str, Any]]:
    return [_render(who, t) for t in await service.list_own_tokens(session, who, KINDS)]


@router.delete("/{token_id}", status_code=204)
async def delete(token_id: str, who: Caller, session: Session) -> Response:
    await service.revoke(session, who, await service.get_own_token(session, who, token_id, KINDS))
    await session.commit()
    return Response(status_code=204)
