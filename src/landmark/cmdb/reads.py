"""Reading records for display: one SQL statement with the referenced records joined in, and
plain objects instead of ORM instances.

Building ORM instances with joined eager loads costs more CPU than the query itself (about 1 ms for
a CI with its nine references); the API only reads them, so reads select exactly the columns a
rendering shows and hand back `SimpleNamespace`s with the same attribute names as the models.
"""

from functools import cached_property
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from landmark.cmdb.schema import RESOURCES, Field, Resource
from landmark.core.db import Reads
from landmark.core.errors import NotFound

# Columns of a referenced record that a reference shows, besides id and its display column.
REFERENCE_COLUMNS = {
    "product_categories": ("reference", "rule_set"),
    "cis": ("name",),
    "products": ("brand",),
}


Part = tuple[int, list[str]]  # where a referenced record's columns start in a row, and their keys


class _Plan:
    """The statement and how to turn each of its rows into nested namespaces."""

    def __init__(self, resource: Resource, fields: tuple[str, ...] | None) -> None:
        model = self.model = resource.model
        if fields is not None and resource.name == "products" and "rule_set" in fields:
            fields = (*fields, "category")  # a product's rule set is its category's
        self.own = _own_columns(resource, fields)
        self.columns: list[Any] = [getattr(model, key) for key in self.own]
        self.joins: list[tuple[Any, Any]] = []
        # (name, where its columns start in a row, their keys, and the same for nested ones)
        self.references: list[tuple[str, Part, list[tuple[str, Part]]]] = []
        for field in resource.fields:
            if field.kind == "reference" and (fields is None or field.name in fields):
                self._reference(model, field)

    def _reference(self, model: Any, field: Field) -> None:
        target = RESOURCES[field.target]
        alias = aliased(target.model)
        self.joins.append((alias, getattr(model, field.column) == alias.id))
        part = self._take(alias, target)
        nested = []
        for extra in target.reference_extras:
            inner = target.by_name[extra]
            if inner.kind != "reference":
                continue
            inner_target = RESOURCES[inner.target]
            inner_alias = aliased(inner_target.model)
            self.joins.append((inner_alias, getattr(alias, inner.column) == inner_alias.id))
            nested.append((extra, self._take(inner_alias, inner_target)))
        self.references.append((field.name, part, nested))

    def _take(self, alias: Any, target: Resource) -> "Part":
        keys = ["id", target.display, "source_id", *REFERENCE_COLUMNS.get(target.name, ())]
        keys += [k for k in ("disabled",) if hasattr(alias, k)]
        keys += [f.column for f in target.fields if f.name in target.reference_extras]
        keys = list(dict.fromkeys(keys))  # "id" stays first
        start = len(self.columns)
        self.columns += [getattr(alias, k) for k in keys]
        return start, keys

    @cached_property
    def by_id(self) -> Select[Any]:
        """One record by id, built once: SQLAlchemy then reuses its cache key and compiled form."""
        model = self.model
        return self.statement.where(
            model.account_id == bindparam("account_id"), model.id == bindparam("ident")
        )

    @cached_property
    def statement(self) -> Select[Any]:
        """Built once per plan (SQLAlchemy then reuses what it derived from it)."""
        query = select(*self.columns)
        for alias, on in self.joins:
            query = query.outerjoin(alias, on)
        return query

    def build(self, row: Any) -> SimpleNamespace:
        """A record from a row (or a tuple) of the statement's columns, in order."""
        record = SimpleNamespace(**dict(zip(self.own, row, strict=False)))
        for name, part, nested in self.references:
            ref = _namespace(row, part)
            if ref is not None:
                for extra, inner in nested:
                    setattr(ref, extra, _namespace(row, inner))
            setattr(record, name, ref)
        return record


def _own_columns(resource: Resource, fields: tuple[str, ...] | None) -> list[str]:
    """The record's own columns a rendering of `fields` (all by default) needs."""
    table_columns = [c.key for c in resource.model.__table__.columns]
    if fields is None:
        return table_columns
    needed = {"id", "account_id", "source_id", "disabled", "rule_set", "hidden"}
    needed |= {resource.by_name[name].column for name in fields}
    return [key for key in table_columns if key in needed]


def _namespace(row: Any, part: Part) -> SimpleNamespace | None:
    """The referenced record whose columns start at `part`'s position, or None (no id)."""
    start, keys = part
    if row[start] is None:
        return None
    return SimpleNamespace(**dict(zip(keys, row[start : start + len(keys)], strict=True)))


_plans: dict[tuple[str, tuple[str, ...] | None], _Plan] = {}


def plan(resource: Resource, fields: tuple[str, ...] | None = None) -> _Plan:
    """The (cached) read plan of a resource for the fields a rendering shows (all by default)."""
    key = (resource.name, fields)
    if key not in _plans:
        if len(_plans) >= 1024:  # `?fields=` choices come from clients: keep the cache bounded
            _plans.clear()
        _plans[key] = _Plan(resource, fields)
    return _plans[key]


async def get(session: AsyncSession, resource: Resource, account_id: str, ident: int) -> Any:
    """One record of the account with every field and reference, or NotFound."""
    reader = plan(resource)
    params = {"account_id": account_id, "ident": ident}
    return _found(resource, reader, (await session.execute(reader.by_id, params)).first())


async def read(reads: Reads, resource: Resource, account_id: str, ident: int) -> Any:
    """The same as `get`, as a lone statement outside any session (core/db.py Reads)."""
    reader = plan(resource)
    params = {"account_id": account_id, "ident": ident}
    return _found(resource, reader, await reads.first(reader.by_id, params))


def _found(resource: Resource, reader: _Plan, row: Any) -> Any:
    if row is None:
        raise not_found(resource)
    return reader.build(row)


def not_found(resource: Resource) -> NotFound:
    return NotFound(f"{resource.singular.replace('_', ' ').capitalize()} not found")
