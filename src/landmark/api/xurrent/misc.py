"""The Xurrent endpoints that are not a resource: the root, who am I, enums, the account, the
rate limit, and the account-wide audit trail."""

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from landmark.api.deps import CurrentPrincipal, Session, SignedIn, require
from landmark.api.xurrent import render
from landmark.api.xurrent.audit import render_lines
from landmark.api.xurrent.resources import CMDB_SUBJECTS, audit_page, reply
from landmark.cmdb import service
from landmark.cmdb.people import person_of
from landmark.cmdb.schema import ENUMS, PEOPLE
from landmark.core.errors import NotFound
from landmark.core.events import Event
from landmark.identity.models import Account
from landmark.identity.permissions import Permission

router = APIRouter(prefix="/v1", tags=["Xurrent CMDB"])


@router.get("", summary="Connectivity check")
async def root() -> dict[str, Any]:
    return {}


@router.get("/me", summary="The person of the signed-in user")
@router.get("/people/me", summary="The person of the signed-in user")
async def me(request: Request, who: CurrentPrincipal, session: Session) -> Response:
    person = await service.reload(session, await person_of(session, who))
    await session.commit()
    return reply(request, render.record(person, PEOPLE))


@router.get("/enums", summary="Every enumeration of the CMDB")
async def enums(request: Request, who: CurrentPrincipal) -> Response:
    return reply(request, {name: [{"value": v} for v in values] for name, values in ENUMS.items()})


@router.get("/account", summary="The account the request acts in")
async def account(request: Request, who: CurrentPrincipal, session: Session) -> Response:
    row = await session.get_one(Account, who.account_id)
    return reply(
        request,
        {
            "id": row.id,
            "name": row.name,
            "uuid": str(row.uuid),
            "status": row.status,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
        },
    )


@router.get("/rate_limit", summary="The rate limit left (does not count as a request)")
async def rate_limit(request: Request, who: SignedIn) -> Response:
    quota = await request.app.state.rate_limiter.peek(
        who.rate_subject, who.rate_limit, who.rate_window
    )
    core = {"limit": quota.limit, "remaining": max(quota.remaining, 0), "reset": quota.reset}
    return reply(request, {"resources": {"core": core}}, headers=quota.headers())


@router.get("/audit_lines", dependencies=[require(Permission.READ)], summary="The audit trail")
async def audit_lines(request: Request, who: CurrentPrincipal, session: Session) -> Response:
    return await audit_page(request, who, session, None, None)


@router.get(
    "/audit_lines/{ident:int}", dependencies=[require(Permission.READ)], summary="An audit line"
)
async def audit_line(
    ident: int, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    event = await session.scalar(
        select(Event).where(
            Event.account_id == who.account_id,
            Event.seq == ident,
            Event.subject_type.in_(CMDB_SUBJECTS),
        )
    )
    if event is None:
        raise NotFound("Audit line not found")
    (line,) = await render_lines(session, who, [event], account_wide=True)
    return reply(request, line)
