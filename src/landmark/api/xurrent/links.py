"""Xurrent routes of CIs beyond the common ones, and of links between records: archive, trash
and restore; CI relations; the users of a CI; the members of a team; the teams of a person."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy import select

from landmark.api.deps import CurrentPrincipal, Session, require
from landmark.api.xurrent import render
from landmark.api.xurrent.resources import list_page, reply
from landmark.cmdb import cis as ci_rules
from landmark.cmdb import links, reads, service
from landmark.cmdb import models as m
from landmark.cmdb.schema import CIS, PEOPLE, TEAMS
from landmark.identity.permissions import Permission

router = APIRouter(prefix="/v1", tags=["Xurrent CMDB"])
READ = [require(Permission.READ)]
WRITE = [require(Permission.WRITE)]
ARCHIVE = [require(Permission.ARCHIVE)]


async def _move(ident: int, action: str, request: Request, who: Any, session: Any) -> Response:
    ci = await service.get(session, CIS, who.account_id, ident)
    await ci_rules.move(session, who, ci, action)
    ci = await service.reload(session, ci)
    await session.commit()
    return reply(request, render.record(ci, CIS))


@router.post("/cis/{ident:int}/archive", dependencies=ARCHIVE, summary="Archive a CI")
async def archive(
    ident: int, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    return await _move(ident, "archive", request, who, session)


@router.post("/cis/{ident:int}/trash", dependencies=ARCHIVE, summary="Trash a CI")
async def trash(ident: int, request: Request, who: CurrentPrincipal, session: Session) -> Response:
    return await _move(ident, "trash", request, who, session)


@router.post("/cis/{ident:int}/restore", dependencies=ARCHIVE, summary="Restore a CI")
async def restore(
    ident: int, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    return await _move(ident, "restore", request, who, session)


# --- CI relations -------------------------------------------------------------------------------


async def _relation_body(
    session: Any, account_id: str, rel: tuple[int, str, int]
) -> dict[str, Any]:
    relation_id, kind, other_id = rel
    other = await session.get(m.ConfigurationItem, other_id)
    return {
        "id": relation_id,
        "ci": {"id": other.id, "label": other.label, "name": other.name},
        "relation_type": kind,
    }


@router.get("/cis/{ident:int}/ci_relations", dependencies=READ, summary="Relations of a CI")
async def list_relations(
    ident: int, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    ci = await service.get(session, CIS, who.account_id, ident)
    rels = await links.relations(session, ci)
    return reply(request, [await _relation_body(session, who.account_id, r) for r in rels])


@router.post(
    "/cis/{ident:int}/ci_relations", dependencies=WRITE, status_code=201, summary="Relate a CI"
)
async def add_relation(
    ident: int,
    body: Annotated[Any, Body()],
    request: Request,
    who: CurrentPrincipal,
    session: Session,
) -> Response:
    ci = await service.get(session, CIS, who.account_id, ident)
    created = await _relation_body(
        session, who.account_id, await links.add_relation(session, who, ci, body)
    )
    await session.commit()
    return reply(request, created, 201)


@router.delete(
    "/cis/{ident:int}/ci_relations/{relation_id:int}", dependencies=WRITE, status_code=204
)
async def remove_relation(
    ident: int, relation_id: int, who: CurrentPrincipal, session: Session
) -> Response:
    ci = await service.get(session, CIS, who.account_id, ident)
    await links.remove_relation(session, who, ci, relation_id)
    await session.commit()
    return Response(status_code=204)


# --- people linked to a record ------------------------------------------------------------------

OWNERS = {"cis": (CIS, "users"), "teams": (TEAMS, "members")}


def _people_routes(path: str) -> None:
    resource, name = OWNERS[path]

    async def list_people(
        ident: int, request: Request, who: CurrentPrincipal, session: Session
    ) -> Response:
        owner = await service.get(session, resource, who.account_id, ident)
        return await list_page(request, session, PEOPLE, links.people_of(resource, owner))

    async def add_person(
        ident: int, person_id: int, request: Request, who: CurrentPrincipal, session: Session
    ) -> Response:
        owner = await service.get(session, resource, who.account_id, ident)
        await links.link_person(session, who, resource, owner, person_id)
        await session.flush()
        person = await reads.get(session, PEOPLE, who.account_id, person_id)
        await session.commit()
        return reply(request, render.listed(person, PEOPLE, PEOPLE.collection_fields), 201)

    async def remove_person(
        ident: int, who: CurrentPrincipal, session: Session, person_id: int | None = None
    ) -> Response:
        """Unlink one person, or everyone when the path names none."""
        owner = await service.get(session, resource, who.account_id, ident)
        await links.unlink_people(session, who, resource, owner, person_id)
        await session.commit()
        return Response(status_code=204)

    base = f"/{path}/{{ident:int}}/{name}"
    router.add_api_route(
        base,
        list_people,
        methods=["GET"],
        dependencies=READ,
        summary=f"List the {name} of a {resource.singular}",
    )
    router.add_api_route(
        f"{base}/{{person_id:int}}",
        add_person,
        methods=["POST"],
        dependencies=WRITE,
        status_code=201,
        summary=f"Add to the {name}",
    )
    router.add_api_route(
        f"{base}/{{person_id:int}}",
        remove_person,
        methods=["DELETE"],
        dependencies=WRITE,
        status_code=204,
        summary=f"Remove from the {name}",
    )
    router.add_api_route(
        base,
        remove_person,
        methods=["DELETE"],
        dependencies=WRITE,
        status_code=204,
        summary=f"Remove all {name}",
    )


for _path in OWNERS:
    _people_routes(_path)


@router.get("/people/{ident:int}/teams", dependencies=READ, summary="The teams of a person")
async def teams_of(
    ident: int, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    person = await service.get(session, PEOPLE, who.account_id, ident)
    member_of = (
        select(m.TeamMember.team_id)
        .where(m.TeamMember.account_id == who.account_id, m.TeamMember.person_id == person.id)
        .scalar_subquery()
    )
    return await list_page(request, session, TEAMS, lambda q: q.where(m.Team.id.in_(member_of)))
