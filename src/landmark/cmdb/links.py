"""Links between records: CI relations, the users of a CI, the members of a team.

Each change is audited on the record it was made through (`update` with a `changes` entry naming
the link), and is an outbox event like any other change.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.cmdb import models as m
from landmark.cmdb.schema import CIS, Resource
from landmark.cmdb.service import audit, invalid
from landmark.core import clock
from landmark.core.errors import NotFound
from landmark.identity.authn import Principal

RELATION_TYPES = ("child", "parent")


async def relations(session: AsyncSession, ci: m.ConfigurationItem) -> list[tuple[int, str, int]]:
    """(relation id, type seen from `ci`, the other CI's id) for every relation of `ci`."""
    rows = (
        await session.execute(
            select(m.CIRelation)
            .where(
                m.CIRelation.account_id == ci.account_id,
                or_(m.CIRelation.ci_id == ci.id, m.CIRelation.child_id == ci.id),
            )
            .order_by(m.CIRelation.id)
        )
    ).scalars()
    return [
        (r.id, "child", r.child_id) if r.ci_id == ci.id else (r.id, "parent", r.ci_id) for r in rows
    ]


async def add_relation(
    session: AsyncSession, who: Principal, ci: m.ConfigurationItem, body: Any
) -> tuple[int, str, int]:
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    kind = body.get("relation_type")
    if kind not in RELATION_TYPES:
        raise invalid("relation_type", f"Relation type is not one of: {', '.join(RELATION_TYPES)}")
    other_id = body.get("related_ci_id")
    other = await _same_account(session, m.ConfigurationItem, ci.account_id, other_id)
    if other is None:
        raise invalid("related_ci_id", f"Related CI {other_id} not found")
    if other.id == ci.id:
        raise invalid("related_ci_id", "A CI cannot be related to itself")
    parent, child = (ci, other) if kind == "child" else (other, ci)
    taken = await session.scalar(
        select(m.CIRelation.id).where(
            m.CIRelation.account_id == ci.account_id,
            or_(
                (m.CIRelation.ci_id == parent.id) & (m.CIRelation.child_id == child.id),
                (m.CIRelation.ci_id == child.id) & (m.CIRelation.child_id == parent.id),
            ),
        )
    )
    if taken:
        raise invalid("related_ci_id", "These CIs are already related")
    relation = m.CIRelation(account_id=ci.account_id, ci_id=parent.id, child_id=child.id)
    session.add(relation)
    await _audit_link(
        session, who, CIS, ci, "ci_relations", None, {"ci_id": other.id, "relation_type": kind}
    )
    return relation.id, kind, other.id


async def remove_relation(
    session: AsyncSession, who: Principal, ci: m.ConfigurationItem, relation_id: int
) -> None:
    found = [r for r in await relations(session, ci) if r[0] == relation_id]
    if not found:
        raise NotFound("CI relation not found")
    _, kind, other = found[0]
    await session.execute(delete(m.CIRelation).where(m.CIRelation.id == relation_id))
    await _audit_link(
        session, who, CIS, ci, "ci_relations", {"ci_id": other, "relation_type": kind}, None
    )


# --- people linked to a record: CI users, team members ------------------------------------------

LINKS: dict[str, tuple[type[Any], str, str]] = {
    "cis": (m.CIUser, "ci_id", "users"),
    "teams": (m.TeamMember, "team_id", "members"),
}


def people_of(resource: Resource, owner: Any) -> Callable[[Select[Any]], Select[Any]]:
    """Narrows a select of people to those linked to `owner` (a CI's users, a team's members)."""
    link, column, _ = LINKS[resource.name]
    linked = (
        select(link.person_id)
        .where(link.account_id == owner.account_id, getattr(link, column) == owner.id)
        .scalar_subquery()
    )
    return lambda query: query.where(m.Person.id.in_(linked))


async def link_person(
    session: AsyncSession, who: Principal, resource: Resource, owner: Any, person_id: int
) -> None:
    link, column, name = LINKS[resource.name]
    person = await _same_account(session, m.Person, owner.account_id, person_id)
    if person is None:
        raise NotFound("Person not found")
    key = {"account_id": owner.account_id, column: owner.id, "person_id": person.id}
    if await session.get(link, key) is None:
        session.add(link(**key))
        await _audit_link(session, who, resource, owner, name, None, person.id)


async def unlink_people(
    session: AsyncSession, who: Principal, resource: Resource, owner: Any, person_id: int | None
) -> None:
    """Unlink one person, or everyone when `person_id` is None."""
    link, column, name = LINKS[resource.name]
    query = delete(link).where(
        link.account_id == owner.account_id, getattr(link, column) == owner.id
    )
    if person_id is not None:
        query = query.where(link.person_id == person_id)
    removed = (await session.execute(query.returning(link.person_id))).scalars().all()
    if person_id is not None and not removed:
        raise NotFound("Person not found")
    for pid in removed:
        await _audit_link(session, who, resource, owner, name, pid, None)


async def _same_account(session: AsyncSession, model: Any, account_id: str, ident: Any) -> Any:
    if not isinstance(ident, int) or isinstance(ident, bool):
        return None
    return await session.scalar(
        select(model).where(model.id == ident, model.account_id == account_id)
    )


async def _audit_link(
    session: AsyncSession,
    who: Principal,
    resource: Resource,
    owner: Any,
    name: str,
    old: Any,
    new: Any,
) -> None:
    owner.updated_at = clock.now()
    await audit(session, who, resource, owner, "update", {name: [old, new]})
