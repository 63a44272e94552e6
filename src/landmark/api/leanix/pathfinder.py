"""LeanIX Pathfinder REST: fact sheets, their relations, the hierarchy and the data model.

A face only: request bodies become LeanIX patches (`eam.service`), so every rule lives once in
the domain; responses use the `{"status", "type", "data", "errors", "total"}` envelope and the
REST FactSheet shape of reference §2.2. Reads need `read`; writes, archiving included, `write`
(LeanIX members may archive); the data model `data_model`.
"""

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from landmark.api.deps import CurrentPrincipal, Session
from landmark.api.leanix.envelope import ok
from landmark.core.errors import InvalidParameter
from landmark.eam import metamodel, queries, service
from landmark.eam.audit import iso
from landmark.eam.errors import invalid, not_found
from landmark.eam.metamodel import FieldDef, MetaModel
from landmark.eam.models import FactSheet, Relation
from landmark.eam.service import Patch
from landmark.identity.authn import Principal
from landmark.identity.permissions import Permission

router = APIRouter(prefix="/services/pathfinder/v1", tags=["leanix-pathfinder"])
MAX_PAGE = 1000

# REST field data types by the data model's field types (LxField, reference §2.2).
REST_TYPES = {
    "STRING": ("StringValue", "value"),
    "SINGLE_SELECT": ("SingleSelect", "keyword"),
    "MULTIPLE_SELECT": ("MultipleSelect", "values"),
    "DOUBLE": ("DoubleValue", "value"),
    "INTEGER": ("IntegerValue", "value"),
    "DATE": ("DateValue", "value"),
    "LIFECYCLE": ("Lifecycle", None),
    "EXTERNAL_ID": ("ExternalId", None),
    "LOCATION": ("Location", None),
}


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class FactSheetBody(Lenient):
    name: str | None = None
    type: str | None = None
    description: str | None = None
    rev: int | None = None
    status: str | None = None
    fields: list[dict[str, Any]] | None = None
    tags: list[dict[str, Any]] | None = None
    relations: list[dict[str, Any]] | None = None
    comment: str | None = None


class ArchiveBody(Lenient):
    comment: str | None = None
    rev: int | None = None


class RelationBody(Lenient):
    type: str
    fromId: uuid.UUID | None = None
    toId: uuid.UUID | None = None
    activeFrom: str | None = None
    activeUntil: str | None = None
    fields: list[dict[str, Any]] | dict[str, Any] | None = None
    rev: int | None = Field(None, description="the fact sheet's rev (optimistic locking)")


# ---- rendering -----------------------------------------------------------------------------


def render_value(definition: FieldDef | None, value: Any) -> dict[str, Any]:
    rest_type, key = REST_TYPES.get(definition.type if definition else "STRING", ("Value", "value"))
    if key is None:
        return {"type": rest_type, **value}
    return {"type": rest_type, key: value}


def render_fields(definitions: dict[str, FieldDef], values: dict[str, Any]) -> list[Any]:
    return [
        {"name": n, "data": render_value(d, values[n]), "dataType": d.type}
        for n, d in definitions.items()
        if n in values
    ]


def render_relation(model: MetaModel, view: queries.RelationView) -> dict[str, Any]:
    r, other = view.relation, view.other
    forward = r.from_id == view.fact_sheet_id
    definition = model.relations.get(r.type)
    return {
        "id": str(r.id),
        "type": r.type,
        "fromId": str(r.from_id),
        "toId": str(r.to_id),
        "typeFromFS": definition.from_type if definition else None,
        "typeToFS": definition.to_type if definition else None,
        "displayNameToFS": other.display_name if forward else None,
        "activeFrom": r.active_from,
        "activeUntil": r.active_until,
        "fields": render_fields(definition.fields if definition else {}, r.fields),
        "status": r.status,
        "factSheet": {
            "id": str(other.id),
            "type": other.type,
            "name": other.name,
            "displayName": other.display_name,
        },
    }


class Loaded:
    """What a page of fact sheets renders with: one statement per kind, whatever the page."""

    def __init__(self) -> None:
        self.relations: dict[uuid.UUID, list[queries.RelationView]] = {}
        self.tags: dict[uuid.UUID, list[Any]] = {}
        self.subscriptions: dict[uuid.UUID, list[Any]] = {}
        self.documents: dict[uuid.UUID, list[Any]] = {}

    @classmethod
    async def load(
        cls,
        session: Session,
        who: Principal,
        model: MetaModel,
        rows: list[FactSheet],
        relation_types: list[str] | None,
        with_relations: bool,
    ) -> "Loaded":
        loaded, ids, account = cls(), [fs.id for fs in rows], who.account_id
        if with_relations:
            loaded.relations = await queries.relations_of(
                session, account, ids, relation_types, model
            )
        loaded.tags = await queries.tags_of(session, account, ids)
        loaded.subscriptions = await queries.subscriptions_of(session, account, ids)
        loaded.documents = await queries.documents_of(session, account, ids)
        return loaded


def render_fact_sheet(model: MetaModel, fs: FactSheet, loaded: Loaded) -> dict[str, Any]:
    type_def = model.types.get(fs.type)
    return {
        "id": str(fs.id),
        "name": fs.name,
        "displayName": fs.display_name,
        "fullName": fs.full_name,
        "type": fs.type,
        "description": fs.description,
        "status": fs.status,
        "level": fs.level,
        "rev": fs.rev,
        "completion": {
            "type": "FactSheetCompletion",
            "completion": fs.completion,
            "percentage": round(fs.completion * 100),
            "subCompletions": [],
        },
        "createdAt": iso(fs.created_at),
        "updatedAt": iso(fs.updated_at),
        "fields": render_fields(type_def.fields if type_def else {}, fs.fields),
        "naFields": [],
        "relations": [render_relation(model, v) for v in loaded.relations.get(fs.id, [])],
        "tags": [_tag(t, g) for t, g in loaded.tags.get(fs.id, [])],
        "subscriptions": [_subscription(s, u) for s, u in loaded.subscriptions.get(fs.id, [])],
        "documents": [_document(d) for d in loaded.documents.get(fs.id, [])],
    }


def _tag(tag: Any, group: Any) -> dict[str, Any]:
    return {
        "id": str(tag.id),
        "name": tag.name,
        "description": tag.description,
        "bgColor": tag.color,
        "status": tag.status,
        "tagGroup": None
        if group is None
        else {"id": str(group.id), "name": group.name, "mode": group.mode},
    }


def _subscription(sub: Any, user: Any) -> dict[str, Any]:
    return {
        "id": str(sub.id),
        "userId": str(user.uuid),
        "type": sub.type,
        "roles": [{"name": r} for r in sub.roles],
    }


def _document(d: Any) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "name": d.name,
        "url": d.url,
        "description": d.description,
        "documentType": d.document_type,
        "origin": d.origin,
        "createdAt": iso(d.created_at),
    }


async def _one(
    session: Session, who: Principal, model: MetaModel, fs: FactSheet, types: list[str] | None
) -> dict[str, Any]:
    loaded = await Loaded.load(session, who, model, [fs], types, True)
    return render_fact_sheet(model, fs, loaded)


# ---- request bodies -> patches -------------------------------------------------------------


def patch_value(definition: FieldDef | None, data: Any) -> str:
    """The patch value (a string, JSON when structured) of a REST field's `data`."""
    if not isinstance(data, dict):
        return data if isinstance(data, str) else json.dumps(data)
    kind = definition.type if definition else "STRING"
    if kind == "LIFECYCLE":
        return json.dumps({"phases": data.get("phases", [])})
    if kind in ("EXTERNAL_ID", "LOCATION"):
        return json.dumps({k: v for k, v in data.items() if k != "type"})
    value = data.get(REST_TYPES[kind][1] or "value", data.get("value"))
    return value if isinstance(value, str) else json.dumps(value)


def field_patches(definitions: dict[str, FieldDef], fields: Any) -> list[Patch]:
    if not isinstance(fields, list):
        raise invalid("/fields", "INVALID_VALUE", "fields must be a list of {name, data}")
    patches = []
    for item in fields:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise invalid("/fields", "INVALID_VALUE", "each field needs a name and data")
        name, data = item["name"], item.get("data")
        if data is None:
            patches.append(Patch("remove", f"/{name}"))
        else:
            patches.append(Patch("replace", f"/{name}", patch_value(definitions.get(name), data)))
    return patches


def tag_patch(tags: list[dict[str, Any]]) -> Patch:
    refs = []
    for t in tags:
        if t.get("id"):
            refs.append({"tagId": t["id"]})
        else:
            group = (t.get("tagGroup") or {}).get("name")
            refs.append({"tagName": t.get("name"), "tagGroupName": group})
    return Patch("replace", "/tags", json.dumps(refs))


def relation_value(model: MetaModel, body: RelationBody | dict[str, Any], target: Any) -> str:
    data = body if isinstance(body, dict) else body.model_dump(exclude_none=True)
    value: dict[str, Any] = {"factSheetId": str(target)} if target else {}
    for key in ("activeFrom", "activeUntil"):
        if key in data:
            value[key] = data[key]
    definition = model.relations.get(str(data.get("type")))
    fields = data.get("fields") or {}
    if isinstance(fields, list):  # [{name, data}] as rendered
        defs = definition.fields if definition else {}
        fields = {f.get("name"): json.loads(_field_json(defs, f)) for f in fields}
    value.update(fields)
    return json.dumps(value)


def _field_json(defs: dict[str, FieldDef], item: dict[str, Any]) -> str:
    raw = patch_value(defs.get(item.get("name", "")), item.get("data"))
    definition = defs.get(item.get("name", ""))
    structured = definition is not None and definition.type not in (
        "STRING",
        "SINGLE_SELECT",
        "DATE",
    )
    return raw if structured else json.dumps(raw)


def relation_side(
    model: MetaModel, fs: FactSheet, body: RelationBody | dict[str, Any]
) -> tuple[str, Any]:
    """The side name and target of a REST relation posted on `fs` (either end)."""
    data = body if isinstance(body, dict) else body.model_dump()
    name, from_id, to_id = str(data.get("type")), data.get("fromId"), data.get("toId")
    definition = model.relations.get(name)
    if definition is None and model.side(fs.type, name) is None:
        raise invalid(f"/{name}", "UNKNOWN_FIELD", f"{name!r} is not a relation of {fs.type}")
    if from_id is not None and str(from_id) != str(fs.id) and str(to_id) == str(fs.id):
        return (definition.reverse_name if definition else name), from_id
    return name, to_id


def create_patches(model: MetaModel, body: FactSheetBody) -> list[Patch]:
    type_def = model.types.get(body.type or "")
    definitions = type_def.fields if type_def else {}
    patches: list[Patch] = []
    if body.description is not None:
        patches.append(Patch("add", "/description", body.description))
    if body.fields is not None:
        patches += field_patches(definitions, body.fields)
    if body.tags:
        patches.append(tag_patch(body.tags))
    for n, rel in enumerate(body.relations or (), 1):
        if not isinstance(rel, dict):
            raise invalid("/relations", "INVALID_VALUE", "relations must be objects")
        name = str(rel.get("type"))
        target = rel.get("toId") or rel.get("factSheetId")
        patches.append(Patch("add", f"/{name}/new_{n}", relation_value(model, rel, target)))
    return patches


def update_patches(model: MetaModel, fs: FactSheet, body: FactSheetBody) -> list[Patch]:
    type_def = model.types.get(fs.type)
    patches: list[Patch] = []
    if body.name is not None:
        patches.append(Patch("replace", "/name", body.name))
    if "description" in body.model_fields_set:
        patches.append(Patch("replace", "/description", body.description))
    if body.fields is not None:
        patches += field_patches(type_def.fields if type_def else {}, body.fields)
    if body.tags is not None:
        patches.append(tag_patch(body.tags))
    if body.status is not None:
        patches.append(Patch("replace", "/status", body.status))
    return patches


# ---- fact sheets ---------------------------------------------------------------------------


def _page_size(value: int) -> int:
    if not 1 <= value <= MAX_PAGE:
        raise InvalidParameter("pageSize", f"pageSize must be between 1 and {MAX_PAGE}")
    return value


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


async def _load(session: Session, who: Principal, fact_sheet_id: uuid.UUID) -> FactSheet:
    fs = await session.scalar(queries.select_fact_sheet(who.account_id, fact_sheet_id))
    if fs is None:
        raise not_found("/id", "fact sheet", fact_sheet_id)
    return fs


@router.get("/factSheets")
async def list_fact_sheets(
    who: CurrentPrincipal,
    session: Session,
    type: Annotated[list[str] | None, Query()] = None,
    relationTypes: Annotated[list[str] | None, Query()] = None,
    fields: Annotated[list[str] | None, Query()] = None,
    archivedOnly: bool = False,
    pageSize: int = 40,
    cursor: str | None = None,
) -> dict[str, Any]:
    who.require(Permission.READ)
    model = await metamodel.load_model(session, who.account_id)
    types = _split(type)
    for t in types or ():
        if t not in model.types:
            raise InvalidParameter("type", f"unknown fact sheet type {t!r}")
    page = await queries.search(
        session, who.account_id, model, types=types, archived_only=archivedOnly,
        first=_page_size(pageSize), after=cursor,
    )  # fmt: skip
    relation_types = _split(relationTypes)
    loaded = await Loaded.load(
        session, who, model, page.rows, relation_types, relation_types is not None
    )
    data = [render_fact_sheet(model, fs, loaded) for fs in page.rows]
    wanted = set(_split(fields) or ())
    if wanted:
        for item in data:
            item["fields"] = [f for f in item["fields"] if f["name"] in wanted]
    body = ok(data, "FactSheet", page.total)
    body["cursor"] = page.end_cursor if page.has_next else None
    return body


@router.post("/factSheets")
async def create_fact_sheet(
    body: FactSheetBody, who: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    who.require(Permission.WRITE)
    model = await metamodel.load_model(session, who.account_id)
    if not body.type:
        raise invalid("/type", "MANDATORY", "type is required")
    patches = create_patches(model, body)
    fs = await service.create_fact_sheet(session, who, model, body.type, body.name or "", patches)
    await session.commit()
    return ok(await _one(session, who, model, fs, None), "FactSheet")


@router.get("/factSheets/hierarchy/{root_id}")
async def hierarchy(
    root_id: uuid.UUID,
    who: CurrentPrincipal,
    session: Session,
    pageSize: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The root and every fact sheet below it, level by level."""
    who.require(Permission.READ)
    model = await metamodel.load_model(session, who.account_id)
    root = await _load(session, who, root_id)
    rows = await queries.subtree(session, who.account_id, root)
    offset = queries.decode_cursor(cursor)
    page = rows[offset : offset + _page_size(pageSize)]
    loaded = await Loaded.load(session, who, model, page, None, False)
    body = ok([render_fact_sheet(model, fs, loaded) for fs in page], "FactSheet", len(rows))
    end = offset + len(page)
    body["cursor"] = queries.encode_cursor(end) if end < len(rows) else None
    return body


@router.get("/factSheets/{fact_sheet_id}")
async def get_fact_sheet(
    fact_sheet_id: uuid.UUID,
    who: CurrentPrincipal,
    session: Session,
    relationTypes: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    who.require(Permission.READ)
    model = await metamodel.load_model(session, who.account_id)
    fs = await _load(session, who, fact_sheet_id)
    return ok(await _one(session, who, model, fs, _split(relationTypes)), "FactSheet")


@router.put("/factSheets/{fact_sheet_id}")
async def update_fact_sheet(
    fact_sheet_id: uuid.UUID,
    body: FactSheetBody,
    who: CurrentPrincipal,
    session: Session,
    comment: str | None = None,
) -> dict[str, Any]:
    who.require(Permission.WRITE)
    model = await metamodel.load_model(session, who.account_id)
    fs = await _load(session, who, fact_sheet_id)
    patches = update_patches(model, fs, body)
    fs = await service.update_fact_sheet(
        session, who, model, fact_sheet_id, body.rev, patches, body.comment or comment
    )
    await session.commit()
    return ok(await _one(session, who, model, fs, None), "FactSheet")


@router.delete("/factSheets/{fact_sheet_id}")
async def archive_fact_sheet(
    fact_sheet_id: uuid.UUID,
    who: CurrentPrincipal,
    session: Session,
    body: Annotated[ArchiveBody | None, Body()] = None,
    comment: str | None = None,
    rev: int | None = None,
) -> dict[str, Any]:
    """Archive (LeanIX `archiveFactSheet`): a soft delete with a required comment."""
    who.require(Permission.WRITE)
    model = await metamodel.load_model(session, who.account_id)
    given = body or ArchiveBody()
    fs = await service.archive_fact_sheet(
        session, who, model, fact_sheet_id, given.rev if given.rev is not None else rev,
        given.comment or comment,
    )  # fmt: skip
    await session.commit()
    return ok(await _one(session, who, model, fs, None), "FactSheet")


# ---- relations -----------------------------------------------------------------------------


async def _relation_views(
    session: Session, who: Principal, model: MetaModel, fs: FactSheet, names: list[str] | None
) -> list[queries.RelationView]:
    views = await queries.relations_of(session, who.account_id, [fs.id], names, model)
    return views.get(fs.id, [])


@router.get("/factSheets/{fact_sheet_id}/relations")
async def list_relations(
    fact_sheet_id: uuid.UUID,
    who: CurrentPrincipal,
    session: Session,
    type: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    who.require(Permission.READ)
    model = await metamodel.load_model(session, who.account_id)
    fs = await _load(session, who, fact_sheet_id)
    views = await _relation_views(session, who, model, fs, _split(type))
    data = [render_relation(model, v) for v in views]
    return ok(data, "FactSheetRelation", len(data))


@router.post("/factSheets/{fact_sheet_id}/relations")
async def create_relation(
    fact_sheet_id: uuid.UUID, body: RelationBody, who: CurrentPrincipal, session: Session
) -> dict[str, Any]:
    who.require(Permission.WRITE)
    model = await metamodel.load_model(session, who.account_id)
    fs = await _load(session, who, fact_sheet_id)
    name, target = relation_side(model, fs, body)
    patch = Patch("add", f"/{name}/new_1", relation_value(model, body, target))
    await service.update_fact_sheet(session, who, model, fs.id, body.rev, [patch])
    await session.commit()
    for view in await _relation_views(session, who, model, fs, [name]):
        if str(view.other.id) == str(target):
            return ok(render_relation(model, view), "FactSheetRelation")
    raise not_found("/relations", "relation", target)  # pragma: no cover (just made)


async def _own_relation(
    session: Session, who: Principal, model: MetaModel, fs: FactSheet, relation_id: uuid.UUID
) -> tuple[str, Relation]:
    for view in await _relation_views(session, who, model, fs, None):
        if view.relation.id == relation_id:
            return view.name, view.relation
    raise not_found(f"/relations/{relation_id}", "relation", relation_id)


@router.put("/factSheets/{fact_sheet_id}/relations/{relation_id}")
async def update_relation(
    fact_sheet_id: uuid.UUID,
    relation_id: uuid.UUID,
    body: RelationBody,
    who: CurrentPrincipal,
    session: Session,
) -> dict[str, Any]:
    who.require(Permission.WRITE)
    model = await metamodel.load_model(session, who.account_id)
    fs = await _load(session, who, fact_sheet_id)
    name, relation = await _own_relation(session, who, model, fs, relation_id)
    _, target = relation_side(model, fs, body)
    current = relation.to_id if relation.from_id == fs.id else relation.from_id
    changed = target if target is not None and str(target) != str(current) else None
    patch = Patch("replace", f"/{name}/{relation_id}", relation_value(model, body, changed))
    await service.update_fact_sheet(session, who, model, fs.id, body.rev, [patch])
    await session.commit()
    for view in await _relation_views(session, who, model, fs, None):
        if view.relation.id == relation_id:
            return ok(render_relation(model, view), "FactSheetRelation")
    raise not_found("/relations", "relation", relation_id)  # pragma: no cover


@router.delete("/factSheets/{fact_sheet_id}/relations/{relation_id}")
async def delete_relation(
    fact_sheet_id: uuid.UUID,
    relation_id: uuid.UUID,
    who: CurrentPrincipal,
    session: Session,
    rev: int | None = None,
) -> dict[str, Any]:
    who.require(Permission.WRITE)
    model = await metamodel.load_model(session, who.account_id)
    fs = await _load(session, who, fact_sheet_id)
    name, _ = await _own_relation(session, who, model, fs, relation_id)
    patch = Patch("remove", f"/{name}/{relation_id}")
    await service.update_fact_sheet(session, who, model, fs.id, rev, [patch])
    await session.commit()
    return ok(None, "FactSheetRelation")


# ---- data model ----------------------------------------------------------------------------


@router.get("/models/dataModel")
async def get_data_model(who: CurrentPrincipal, session: Session) -> dict[str, Any]:
    who.require(Permission.READ)
    model = await metamodel.load_model(session, who.account_id)
    await session.commit()  # the standard model, stored on first use
    return ok(model.to_json(), "DataModel")


@router.put("/models/dataModel")
async def put_data_model(
    request: Request,
    who: CurrentPrincipal,
    session: Session,
    body: Annotated[dict[str, Any], Body()],
    force: bool = False,
) -> dict[str, Any]:
    who.require(Permission.DATA_MODEL)
    model = await metamodel.save_model(session, who, body, force)
    await session.commit()
    request.app.state.model_versions.changed(who.account_id)  # here at once; others on NOTIFY
    return ok(model.to_json(), "DataModel")
