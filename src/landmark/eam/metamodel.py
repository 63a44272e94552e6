"""An account's data model (LeanIX "meta model"): fact sheet types, their fields and relations.

Stored as LeanIX-shaped JSON (`GET /models/dataModel`) in `eam_data_models`, parsed once per
(account, version). Relations are keyed by their FROM-side name; the reverse name is how the TO
side sees the same relation. A relation whose `from_type` is None (relToParent, relToRequires,
relToSuccessor) exists on every type, between fact sheets of the same type (TYPE_EQUAL).

Multiplicity: `from_multiplicity` SINGLE = a FROM fact sheet has at most one relation of this
name; `to_multiplicity` SINGLE = a TO fact sheet has at most one (e.g. an interface has one
provider application).
"""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core import channels, clock
from landmark.core.db import Reads
from landmark.core.errors import ValidationFailed
from landmark.eam.models import DataModel, FactSheet, Relation
from landmark.identity.authn import Principal

FIELD_TYPES = (
    "STRING",
    "SINGLE_SELECT",
    "MULTIPLE_SELECT",
    "LIFECYCLE",
    "EXTERNAL_ID",
    "DOUBLE",
    "INTEGER",
    "DATE",
    "LOCATION",
)
SELECTS = ("SINGLE_SELECT", "MULTIPLE_SELECT", "LIFECYCLE")
MULTIPLICITIES = ("SINGLE", "MULTI")


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    values: list[str] | None = None  # allowed keys of a select, phases of a lifecycle
    mandatory: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "mandatory": self.mandatory}
        if self.values is not None:
            out["values"] = list(self.values)
        return out


@dataclass
class RelationDef:
    name: str
    reverse_name: str
    from_type: str | None  # None: every type, to the same type
    to_type: str | None
    from_multiplicity: str = "MULTI"
    to_multiplicity: str = "MULTI"
    fields: dict[str, FieldDef] = field(default_factory=dict)
    constraints: list[str] = field(default_factory=list)

    def accepts(self, from_type: str, to_type: str) -> bool:
        if self.from_type is None:
            return from_type == to_type
        return self.from_type == from_type and self.to_type == to_type


@dataclass
class FactSheetTypeDef:
    name: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    relations: list[str] = field(default_factory=list)  # usable from this type, both directions
    max_hierarchy_level: int = 3


@dataclass(frozen=True)
class RelationSide:
    """A relation name as seen from one type: its definition and whether that type is FROM."""

    definition: RelationDef
    forward: bool

    @property
    def name(self) -> str:
        return self.definition.name if self.forward else self.definition.reverse_name

    @property
    def target_type(self) -> str | None:
        d = self.definition
        return d.to_type if self.forward else d.from_type

    @property
    def single(self) -> bool:
        """At most one relation of this name on this side."""
        d = self.definition
        return (d.from_multiplicity if self.forward else d.to_multiplicity) == "SINGLE"

    @property
    def target_single(self) -> bool:
        d = self.definition
        return (d.to_multiplicity if self.forward else d.from_multiplicity) == "SINGLE"


@dataclass
class MetaModel:
    types: dict[str, FactSheetTypeDef]
    relations: dict[str, RelationDef]
    version: int = 1

    def __post_init__(self) -> None:
        self._sides: dict[tuple[str, str], RelationSide] = {}
        for t in self.types.values():
            t.relations = []
        for rel in self.relations.values():
            for type_name, t in self.types.items():
                if rel.from_type in (None, type_name):
                    self._add_side(t, RelationSide(rel, True))
                if rel.to_type in (None, type_name):
                    self._add_side(t, RelationSide(rel, False))
        self._relation_names = frozenset(name for _, name in self._sides)

    def _add_side(self, t: FactSheetTypeDef, side: RelationSide) -> None:
        self._sides[(t.name, side.name)] = side
        t.relations.append(side.name)

    def side(self, type_name: str, relation_name: str) -> RelationSide | None:
        """The relation `relation_name` as used from a fact sheet of `type_name`, if it exists."""
        return self._sides.get((type_name, relation_name))

    def sides_named(self, relation_name: str) -> list[RelationSide]:
        """Every (definition, direction) a name stands for, whatever the type."""
        found = {(s.definition.name, s.forward): s for (_, n), s in self._sides.items()}
        return [s for s in found.values() if s.name == relation_name]

    def relation_names(self) -> frozenset[str]:
        """Every relation name of every type (computed once: each write asks)."""
        return self._relation_names

    @classmethod
    def from_json(cls, data: dict[str, Any], version: int = 1) -> "MetaModel":
        """Parse LeanIX-shaped JSON; raises ValidationFailed naming the bad path."""
        if not isinstance(data, dict) or not isinstance(data.get("factSheets"), dict):
            raise _bad("/factSheets", "must be an object of fact sheet types")
        types = {n: _type_from_json(n, d) for n, d in data["factSheets"].items()}
        relations_json = data.get("relations") or {}
        if not isinstance(relations_json, dict):
            raise _bad("/relations", "must be an object of relations")
        relations = [_relation_from_json(k, d, types) for k, d in relations_json.items()]
        return cls(types, {r.name: r for r in relations}, version)

    def to_json(self) -> dict[str, Any]:
        return {
            "factSheets": {
                t.name: {
                    "fields": {f.name: f.to_json() for f in t.fields.values()},
                    "relations": list(t.relations),
                    "config": {"maxHierarchyLevel": t.max_hierarchy_level},
                }
                for t in self.types.values()
            },
            "relations": {r.name: _relation_to_json(r) for r in self.relations.values()},
        }


def _bad(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"Invalid data model: {path} {message}", [(path, message)])


def _field_from_json(path: str, name: str, data: Any) -> FieldDef:
    if not isinstance(data, dict) or data.get("type") not in FIELD_TYPES:
        raise _bad(path, f"type must be one of {', '.join(FIELD_TYPES)}")
    values = data.get("values")
    listed = isinstance(values, list) and all(isinstance(v, str) and v for v in values)
    if data["type"] in SELECTS and not listed:
        raise _bad(path, "needs `values`, a list of keys")
    return FieldDef(
        name, data["type"], list(values) if values else None, bool(data.get("mandatory"))
    )


def _type_from_json(name: str, data: Any) -> FactSheetTypeDef:
    path = f"/factSheets/{name}"
    if not isinstance(data, dict) or not name.isidentifier():
        raise _bad(path, "must be an object named like an identifier")
    fields_json = data.get("fields") or {}
    fields = {n: _field_from_json(f"{path}/fields/{n}", n, d) for n, d in fields_json.items()}
    level = (data.get("config") or {}).get("maxHierarchyLevel", 3)
    if not isinstance(level, int) or not 1 <= level <= 10:
        raise _bad(f"{path}/config/maxHierarchyLevel", "must be an integer from 1 to 10")
    return FactSheetTypeDef(name, fields, [], level)


def _relation_from_json(key: str, data: Any, types: dict[str, FactSheetTypeDef]) -> RelationDef:
    path = f"/relations/{key}"
    if not isinstance(data, dict):
        raise _bad(path, "must be an object")
    ends = []
    for end in ("from", "to"):
        side = data.get(end) or {}
        fs_type = side.get("factSheetType")
        if fs_type is not None and fs_type not in types:
            raise _bad(f"{path}/{end}/factSheetType", f"unknown fact sheet type {fs_type!r}")
        if side.get("multiplicity", "MULTI") not in MULTIPLICITIES:
            raise _bad(f"{path}/{end}/multiplicity", "must be SINGLE or MULTI")
        if not isinstance(side.get("name"), str) or not side["name"].startswith("rel"):
            raise _bad(f"{path}/{end}/name", "must be a relation name starting with 'rel'")
        ends.append(side)
    fields_json = data.get("fields") or {}
    fields = {n: _field_from_json(f"{path}/fields/{n}", n, d) for n, d in fields_json.items()}
    return RelationDef(
        name=ends[0]["name"],
        reverse_name=ends[1]["name"],
        from_type=ends[0].get("factSheetType"),
        to_type=ends[1].get("factSheetType"),
        from_multiplicity=ends[0].get("multiplicity", "MULTI"),
        to_multiplicity=ends[1].get("multiplicity", "MULTI"),
        fields=fields,
        constraints=list(data.get("constraints") or []),
    )


def _relation_to_json(r: RelationDef) -> dict[str, Any]:
    return {
        "from": {"factSheetType": r.from_type, "name": r.name, "multiplicity": r.from_multiplicity},
        "to": {
            "factSheetType": r.to_type,
            "name": r.reverse_name,
            "multiplicity": r.to_multiplicity,
        },
        "fields": {f.name: f.to_json() for f in r.fields.values()},
        "constraints": list(r.constraints),
    }


# ---- storage -----------------------------------------------------------------------------

_cache: dict[tuple[str, int], MetaModel] = {}


async def load_model(session: AsyncSession, account_id: str) -> MetaModel:
    """The account's data model; the standard model is stored for the account on first use."""
    return (await load_or_store_model(session, account_id))[0]


VERSION = select(DataModel.version).where(DataModel.account_id == bindparam("account_id"))
CHANNEL = "landmark_models"  # NOTIFY: an account's data model changed (payload: its id)


class KnownVersions:
    """Each account's data model version, known without a round trip while this process hears
    every change (PostgreSQL: `save_model` NOTIFYs on CHANNEL in its transaction, and each
    server process listens, core/channels.py). While it does not listen (SQLite, or its
    connection dropped) nothing is known, and each request reads the version."""

    def __init__(self) -> None:
        self.listening = False
        self.epoch = 0  # moves on with every change heard: a version read before is not kept
        self._known: dict[str, int] = {}

    def get(self, account_id: str) -> int | None:
        return self._known.get(account_id)

    def keep(self, account_id: str, version: int, epoch: int) -> None:
        if self.listening and epoch == self.epoch:
            self._known[account_id] = version

    def changed(self, account_id: str) -> None:
        self.epoch += 1
        self._known.pop(account_id, None)

    def connected(self, up: bool) -> None:
        self.epoch += 1
        self._known.clear()
        self.listening = up

    async def listen(self, database_url: str, stop: asyncio.Event) -> None:
        await channels.listen(database_url, CHANNEL, self.changed, stop, self.connected)


async def load_or_store_model(
    session: AsyncSession,
    account_id: str,
    reads: Reads | None = None,
    versions: KnownVersions | None = None,
) -> tuple[MetaModel, bool]:
    """`load_model`, and whether it stored the standard model just now (for the caller to
    commit it before work that may roll back). With `reads`, the version is read outside the
    session (core/db.Reads: no ORM on the way), and with `versions` not at all while known, as
    the busiest caller, GraphQL, does."""
    version = versions.get(account_id) if versions else None
    if version is None:
        epoch = versions.epoch if versions else 0
        version = await _read_version(session, account_id, reads)
        if version is None:
            return await _create_standard(session, account_id), True
        if versions:
            versions.keep(account_id, version, epoch)
    cached = _cache.get((account_id, version))
    if cached is not None:
        return cached, False
    row = await session.get(DataModel, account_id)
    assert row is not None
    return _parsed(account_id, row), False


async def _read_version(session: AsyncSession, account_id: str, reads: Reads | None) -> int | None:
    params = {"account_id": account_id}
    if reads is not None:
        found = await reads.first(VERSION, params)
        return found[0] if found else None
    return await session.scalar(VERSION, params)


def _parsed(account_id: str, row: DataModel) -> MetaModel:
    found = _cache.get((account_id, row.version))
    return found or _remember(account_id, MetaModel.from_json(row.model, row.version))


def _remember(account_id: str, model: MetaModel) -> MetaModel:
    _cache[(account_id, model.version)] = model
    return model


async def _create_standard(session: AsyncSession, account_id: str) -> MetaModel:
    from landmark.eam.standard_model import STANDARD_MODEL

    try:
        async with session.begin_nested():
            session.add(DataModel(account_id=account_id, model=STANDARD_MODEL.to_json(), version=1))
    except IntegrityError:  # another request stored it first
        return await load_model(session, account_id)
    return _remember(account_id, MetaModel.from_json(STANDARD_MODEL.to_json(), 1))


async def save_model(
    session: AsyncSession, who: Principal, new_json: dict[str, Any], force: bool
) -> MetaModel:
    """Replace the account's data model; 422 naming the path of the first change that would
    orphan data still in use, unless `force` (the data is then kept, hidden from the model)."""
    from landmark.core.events import record

    await load_model(session, who.account_id)  # the standard model is stored on first use
    row = await session.get(DataModel, who.account_id, with_for_update=True)
    assert row is not None
    old, new = _parsed(who.account_id, row), MetaModel.from_json(new_json)
    if not force:
        for path, query in _orphan_checks(who.account_id, old, new):
            if await session.scalar(query):
                raise _bad(path, "is still in use; pass force=true to remove it anyway")
    row.model = new.to_json()
    row.version += 1
    row.updated_at = clock.now()
    new.version = row.version
    if session.get_bind().dialect.name == "postgresql":  # heard by every process at commit
        await session.execute(select(func.pg_notify(CHANNEL, who.account_id)))
    await record(
        session,
        who.account_id,
        "DATA_MODEL_UPDATED",
        "dataModel",
        who.account_id,
        who.actor,
        {"version": row.version, "forced": force},
    )
    return _remember(who.account_id, new)


def _exists(query: Any) -> Any:
    return select(func.count()).select_from(query.limit(1).subquery())


def _orphan_checks(account_id: str, old: MetaModel, new: MetaModel) -> list[tuple[str, Any]]:
    """(path, query counting rows that would be orphaned) for every removal old -> new."""
    fs = select(FactSheet.id).where(FactSheet.account_id == account_id)
    checks: list[tuple[str, Any]] = []
    for t in old.types.values():
        path = f"/factSheets/{t.name}"
        if t.name not in new.types:
            checks.append((path, _exists(fs.where(FactSheet.type == t.name))))
            continue
        of_type = fs.where(FactSheet.type == t.name)
        new_fields = new.types[t.name].fields
        checks += _field_checks(f"{path}/fields", of_type, FactSheet.fields, t.fields, new_fields)
    rel = select(Relation.id).where(Relation.account_id == account_id)
    for r in old.relations.values():
        path = f"/relations/{r.name}"
        kept = new.relations.get(r.name)
        of_name = rel.where(Relation.type == r.name)
        if kept is None or (kept.from_type, kept.to_type) != (r.from_type, r.to_type):
            checks.append((path, _exists(of_name)))
            continue
        checks += _field_checks(f"{path}/fields", of_name, Relation.fields, r.fields, kept.fields)
    return checks


def _field_checks(
    path: str, rows: Any, column: Any, old: dict[str, FieldDef], new: dict[str, FieldDef]
) -> list[tuple[str, Any]]:
    checks: list[tuple[str, Any]] = []
    for f in old.values():
        value = column[f.name].as_string()
        kept = new.get(f.name)
        if kept is None or kept.type != f.type:
            checks.append((f"{path}/{f.name}", _exists(rows.where(value.is_not(None)))))
            continue
        for v in set(f.values or ()) - set(kept.values or ()):
            # Select keys and phases appear quoted in the stored JSON text (or bare for a single
            # select, whose JSON string as_string unquotes).
            used = (value == v) | value.like(f'%"{v}"%')
            checks.append((f"{path}/{f.name}/values/{v}", _exists(rows.where(used))))
    return checks
