"""What each CMDB collection lets a client filter and sort on, and its predefined filters.

One definition per resource (from cmdb/schema.py) feeds the query engine (core/query.py).
"""

from functools import cache
from typing import Any

from sqlalchemy import Select, select

from landmark.cmdb import models as m
from landmark.cmdb.schema import INACTIVE_STATUSES, Resource
from landmark.core.errors import NotFound
from landmark.core.query import Attribute, Listing
from landmark.identity.authn import Principal

# Text filters that compare without case (Xurrent documents these per resource).
CASE_INSENSITIVE = {
    "cis": {"label", "serial_nr"},
    "people": {"primary_email", "supportID"},
    "product_categories": {"source", "sourceID", "reference", "name"},
}
QUERY_KIND = {"text": "string", "strings": "string", "json": "string", "aggregated": "string"}


def _column(resource: Resource, name: str) -> Any:
    """The column (or expression) a filter or sort of `resource` compares."""
    if resource.model is m.Product and name == "rule_set":  # the category's, not stored twice
        category = m.ProductCategory
        return (
            select(category.rule_set).where(category.id == m.Product.category_id).scalar_subquery()
        )
    return getattr(resource.model, resource.by_name[name].column)


def _attribute(resource: Resource, name: str) -> Attribute:
    field = resource.by_name[name]
    kind: Any = QUERY_KIND.get(field.kind, field.kind)
    return Attribute(
        name=name,
        column=_column(resource, name),
        kind=kind,
        case_insensitive=name in CASE_INSENSITIVE.get(resource.name, set()),
        values=field.values,
    )


@cache
def listing(resource: Resource) -> Listing:
    filters: dict[str, Attribute] = {}
    for name in resource.filters:
        attribute = _attribute(resource, name)
        filters[name] = attribute
        if attribute.kind == "reference":
            filters[f"{name}_id"] = attribute
    return Listing(
        filters=filters,
        sorts={name: _attribute(resource, name) for name in resource.sorts},
        default_sort=resource.default_sort,
        id_column=resource.model.id,
    )


def my_team_ids(who: Principal) -> Select[Any]:
    """The teams the signed-in user's person is a member of."""
    return (
        select(m.TeamMember.team_id)
        .join(m.Person, m.Person.id == m.TeamMember.person_id)
        .where(m.TeamMember.account_id == who.account_id, m.Person.user_id == who.user_id)
    )


def narrowed(
    resource: Resource, query: Select[Any], who: Principal, name: str | None
) -> Select[Any]:
    """The collection's default view, or one of its predefined filters (`/cis/active`)."""
    model = resource.model
    if resource.name == "cis":
        query = query.where(model.hidden.is_(None))  # archived and trashed CIs are out of view
    if name is None:
        return query
    if name not in resource.predefined:
        raise NotFound(f"Unknown predefined filter: {name}")
    if name == "enabled":
        return query.where(model.disabled.is_(False))
    if name == "disabled":
        return query.where(model.disabled.is_(True))
    if name == "active":
        return query.where(model.status.not_in(INACTIVE_STATUSES))
    if name == "inactive":
        return query.where(model.status.in_(INACTIVE_STATUSES))
    return query.where(model.support_team_id.in_(my_team_ids(who)))  # supported_by_my_teams
