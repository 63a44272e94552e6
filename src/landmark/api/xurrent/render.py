"""CMDB records as Xurrent renders them.

A single record shows every field (blanks as null); a collection shows the resource's collection
fields or those named in `?fields=`. References are `{id, name}` (`label` for CIs), with
`sourceID` when set and `disabled: true` for disabled records, plus a few resource-specific
extras (a product shows its brand and category, a service its provider).
"""

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from landmark.cmdb.cis import derived
from landmark.cmdb.schema import RESOURCES, Field, Resource
from landmark.cmdb.values import plain
from landmark.core.errors import BadRequest


def reference(obj: Any, resource: Resource) -> dict[str, Any] | None:
    if obj is None:
        return None
    ref: dict[str, Any] = {"id": obj.id, resource.display: getattr(obj, resource.display)}
    if resource.name == "cis":
        ref["name"] = obj.name
    if obj.source_id:
        ref["sourceID"] = obj.source_id
    if getattr(obj, "disabled", False):
        ref["disabled"] = True
    for extra in resource.reference_extras:
        ref[extra] = _extra(obj, resource.by_name[extra])
    return ref


def _extra(obj: Any, field: Field) -> Any:
    if field.name == "category":  # a product's category shows as its reference string
        return obj.category.reference
    if field.kind == "reference":
        target = getattr(obj, field.name)
        return None if target is None else {"id": target.id, "name": target.name}
    return getattr(obj, field.column)


Getter = Callable[[Any], Any]


def getter(field: Field, resource: Resource) -> Getter:
    """How to read one field of a record for output (chosen once per field, not per value)."""
    if field.kind == "reference":
        target = RESOURCES[field.target]
        return lambda obj: reference(getattr(obj, field.name), target)
    if field.name in ("software", "ci_type"):
        return lambda obj: derived(obj)[field.name]
    if field.name == "rule_set" and resource.name == "products":
        return lambda obj: obj.category.rule_set
    column = field.column
    return lambda obj: plain(getattr(obj, column))


@lru_cache(maxsize=1024)  # `?fields=` choices come from clients: bounded
def _getters(resource: Resource, fields: tuple[str, ...]) -> tuple[tuple[str, Getter], ...]:
    return tuple((name, getter(resource.by_name[name], resource)) for name in fields)


def record(obj: Any, resource: Resource) -> dict[str, Any]:
    """Every readable field of one record."""
    shown = tuple(f.name for f in resource.fields if not f.writeonly)
    return {name: get(obj) for name, get in _getters(resource, shown)}


def listed(obj: Any, resource: Resource, fields: tuple[str, ...]) -> dict[str, Any]:
    """The chosen fields of a record in a collection; disabled records say so."""
    row = {name: get(obj) for name, get in _getters(resource, fields)}
    if getattr(obj, "disabled", False):
        row["disabled"] = True
    return row


def collection_fields(resource: Resource, requested: str | None) -> tuple[str, ...]:
    """`?fields=a,b` (id always first) or the resource's default collection fields."""
    if not requested:
        return resource.collection_fields
    names = [n.strip() for n in requested.split(",") if n.strip()]
    unknown = [n for n in names if n not in resource.by_name or resource.by_name[n].writeonly]
    if unknown:
        raise BadRequest(f"Unknown fields: {', '.join(unknown)}")
    return ("id", *(n for n in names if n != "id"))
