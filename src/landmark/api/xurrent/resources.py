"""The Xurrent REST face of every CMDB resource: list, predefined filters, get, create, update,
audit. The same handful of routes is registered for each resource of cmdb/schema.py; the routes
of links (CI relations and users, team members) and CI archiving are in api/xurrent/links.py.
"""

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy import Select, select

from landmark.api.deps import CurrentPrincipal, Session, allowed, require
from landmark.api.xurrent import render
from landmark.api.xurrent.audit import render_lines
from landmark.api.xurrent.pagination import pagination_headers
from landmark.cmdb import cis as ci_rules
from landmark.cmdb import reads, service
from landmark.cmdb.queries import listing, narrowed
from landmark.cmdb.schema import RESOURCES, Resource
from landmark.core.errors import DomainError
from landmark.core.events import Event
from landmark.core.query import Attribute, Listing, fetch_page, parse_list_query
from landmark.identity.authn import Principal
from landmark.identity.permissions import Permission

router = APIRouter(prefix="/v1", tags=["Xurrent CMDB"])
READ = [require(Permission.READ)]
WRITE = [require(Permission.WRITE)]
Reader = Annotated[Principal, allowed(Permission.READ)]
JSONBody = Annotated[Any, Body()]


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition_failed"


# --- responses: JSON with a weak ETag, 304 for a matching If-None-Match ----------------------


def etag_of(content: bytes) -> str:
    return f'W/"{hashlib.sha1(content).hexdigest()[:32]}"'


def encode(body: Any) -> bytes:
    return json.dumps(body, default=str, separators=(",", ":")).encode()


def reply(
    request: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    content = encode(body)
    etag = etag_of(content)
    headers = {"ETag": etag, **(headers or {})}
    if status == 200 and etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content, status, headers, media_type="application/json")


def check_if_match(request: Request, current: dict[str, Any]) -> None:
    """A PATCH carrying If-Match applies only to the version the client saw (else 412)."""
    expected = request.headers.get("if-match")
    if expected and expected.strip() != "*" and etag_of(encode(current)) not in expected:
        raise PreconditionFailed("The record was changed since it was read (If-Match)")


def source_hint(request: Request) -> service.Write:
    headers = request.headers
    hint = headers.get("x-xurrent-source") or headers.get("x-4me-source")
    return service.Write(source_hint=(hint or headers.get("user-agent") or None))


# --- collections ------------------------------------------------------------------------------


async def page_of(
    request: Request, session: Any, query: Any, spec: Listing
) -> tuple[list[Any], dict[str, str]]:
    params = request.query_params.multi_items()
    parsed = parse_list_query(spec, params, ignore=("fields",))
    page = await fetch_page(session, query, spec, parsed)
    url = str(request.url).split("?", 1)[0]
    return page.rows, pagination_headers(url, params, page)


Scope = Callable[[Select[Any]], Select[Any]]


async def list_page(request: Request, session: Any, resource: Resource, scope: Scope) -> Response:
    """One page of the resource's records that `scope` selects, filtered, sorted and rendered.

    `scope` narrows the read statement to the account (and to a predefined filter or a link)."""
    fields = render.collection_fields(resource, request.query_params.get("fields"))
    reader = reads.plan(resource, fields)
    rows, headers = await page_of(request, session, scope(reader.statement), listing(resource))
    body = [render.listed(reader.build(row), resource, fields) for row in rows]
    return reply(request, body, headers=headers)


async def list_records(
    request: Request, who: Any, session: Any, resource: Resource, predefined: str | None
) -> Response:
    def scope(query: Select[Any]) -> Select[Any]:
        query = query.where(resource.model.account_id == who.account_id)
        return narrowed(resource, query, who, predefined)

    return await list_page(request, session, resource, scope)


# --- the routes of one resource ------------------------------------------------------------------


def _routes(resource: Resource) -> None:
    base = f"/{resource.name}"
    noun = resource.singular.replace("_", " ")

    router.add_api_route(
        base,
        _lister(resource, None),
        methods=["GET"],
        dependencies=READ,
        summary=f"List {resource.name}",
    )
    for name in resource.predefined:
        router.add_api_route(
            f"{base}/{name}",
            _lister(resource, name),
            methods=["GET"],
            dependencies=READ,
            summary=f"List {name} {resource.name}",
        )

    async def get_one(ident: int, request: Request, who: Reader) -> Response:
        obj = await reads.read(request.app.state.reads, resource, who.account_id, ident)
        return reply(request, render.record(obj, resource))

    async def create(
        body: JSONBody, request: Request, who: CurrentPrincipal, session: Session
    ) -> Response:
        if resource.name == "cis":
            obj, created = await ci_rules.create(session, who, body, source_hint(request))
        else:
            obj = await service.create(session, who, resource, body, source_hint(request))
            created = True
        obj = await service.reload(session, obj)
        await session.commit()
        location = {"Location": f"{str(request.url).split('?', 1)[0]}/{obj.id}"}
        return reply(request, render.record(obj, resource), 201 if created else 200, location)

    async def patch(
        ident: int, body: JSONBody, request: Request, who: CurrentPrincipal, session: Session
    ) -> Response:
        shown = await reads.get(session, resource, who.account_id, ident)
        check_if_match(request, render.record(shown, resource))
        obj = await service.get(session, resource, who.account_id, ident)
        if resource.name == "cis":
            await ci_rules.update(session, who, obj, body)
        else:
            await service.update(session, who, resource, obj, body)
        obj = await service.reload(session, obj)
        await session.commit()
        return reply(request, render.record(obj, resource))

    async def audit(
        ident: int, request: Request, who: CurrentPrincipal, session: Session
    ) -> Response:
        await service.get(session, resource, who.account_id, ident)
        return await audit_page(request, who, session, resource.singular, ident)

    one = f"{base}/{{ident:int}}"
    router.add_api_route(one, get_one, methods=["GET"], summary=f"Get a {noun}")
    router.add_api_route(
        base,
        create,
        methods=["POST"],
        dependencies=WRITE,
        summary=f"Create a {noun}",
        status_code=201,
    )
    for method in ("PATCH", "PUT"):  # one route each: each gets its own OpenAPI operation id
        router.add_api_route(
            one, patch, methods=[method], dependencies=WRITE, summary=f"Update a {noun}"
        )
    router.add_api_route(
        f"{one}/audit",
        audit,
        methods=["GET"],
        dependencies=READ,
        summary=f"Audit trail of a {noun}",
    )


def _lister(resource: Resource, predefined: str | None) -> Callable[..., Any]:
    """The handler of a collection, whole or through one of its predefined filters."""

    async def list_collection(
        request: Request, who: CurrentPrincipal, session: Session
    ) -> Response:
        return await list_records(request, who, session, resource, predefined)

    return list_collection


# --- audit trail ------------------------------------------------------------------------------

AUDIT_LISTING = Listing(
    filters={
        "id": Attribute("id", Event.seq, "integer"),
        "created_at": Attribute("created_at", Event.created_at, "datetime"),
    },
    sorts={"id": Attribute("id", Event.seq, "integer")},
    default_sort=("-id",),
    id_column=Event.seq,
)
CMDB_SUBJECTS = tuple(r.singular for r in RESOURCES.values())


async def audit_page(
    request: Request, who: Any, session: Any, subject_type: str | None, subject_id: int | None
) -> Response:
    query = select(Event).where(Event.account_id == who.account_id)
    if subject_type is None:
        query = query.where(Event.subject_type.in_(CMDB_SUBJECTS))
    else:
        query = query.where(Event.subject_type == subject_type, Event.subject_id == str(subject_id))
    rows, headers = await page_of(request, session, query, AUDIT_LISTING)
    body = await render_lines(session, who, rows, account_wide=subject_type is None)
    return reply(request, body, headers=headers)


# CIs first: FastAPI tries routes in order, and CIs are what clients ask for most.
for _resource in sorted(RESOURCES.values(), key=lambda r: r.name != "cis"):
    _routes(_resource)
