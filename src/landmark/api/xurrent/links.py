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
from landmark.cmdb.schema import CIS, PEOPLE, RESOURCES, TEAMS, Resource
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


async def _relation_bodies(session: Any, rels: list[tuple[int, str, int]]) -> list[dict[str, Any]]:
    """Xurrent's CI relation objects; the related CIs are read in one query."""
    ids = {other_id for _, _, other_id in rels}
    query = select(m.ConfigurationItem).where(m.ConfigurationItem.id.in_(ids))
    others = {ci.id: ci for ci in await session.scalars(query)} if ids else {}
    return [
        {
            "id": relation_id,
            "ci": {"id": other_id, "label": others[other_id].label, "name": others[other_id].name},
            "relation_type": kind,
        }
        for relation_id, kind, other_id in rels
    ]


@router.get("/cis/{ident:int}/ci_relations", dependencies=READ, summary="Relations of a CI")
async def list_relations(
    ident: int, request: Request, who: CurrentPrincipal, session: Session
) -> Response:
    ci = await service.get(session, CIS, who.account_id, ident)
    return reply(request, await _relation_bodies(session, await links.relations(session, ci)))


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
    rel = await links.add_relation(session, who, ci, body)
    (created,) = await _relation_bodies(session, [rel])
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


def _people_routes(resource: Resource) -> None:
    name = links.LINKS[resource.name][2]  # "users" of a CI, "members" of a team

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

    base = f"/{resource.name}/{{ident:int}}/{name}"
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


for _owner in links.LINKS:
    _people_routes(RESOURCES[_owner])


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
