"""The person record that stands for a signed-in user in an account (GET /v1/me), and who made
a change as Xurrent names them (audit lines, webhook deliveries)."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.cmdb import models as m
from landmark.cmdb.schema import PEOPLE
from landmark.cmdb.service import audit, creation_changes
from landmark.identity.authn import Principal
from landmark.identity.models import User


async def person_of(session: AsyncSession, who: Principal) -> m.Person:
    """The user's person in the account, created (and audited) on first use.

    Identity users and CMDB people are separate: an account's directory may list people who
    never sign in. A user gets a person the first time they ask who they are; a person with the
    same primary email is adopted instead of duplicated.
    """
    email = who.user_email or f"technical-user-{who.user_id}@{who.account_id}.invalid"
    found = (
        await session.scalars(
            select(m.Person)
            .where(m.Person.account_id == who.account_id)
            .where(
                (m.Person.user_id == who.user_id)
                | (
                    m.Person.user_id.is_(None)
                    & (func.lower(m.Person.primary_email) == email.lower())
                )
            )
            .order_by(m.Person.user_id.is_(None))
            .limit(1)
        )
    ).first()
    if found is not None:
        found.user_id = who.user_id
        return found
    person = m.Person(
        account_id=who.account_id,
        name=who.user_name,
        primary_email=email,
        user_id=who.user_id,
        source="Landmark",
    )
    session.add(person)
    await audit(session, who, PEOPLE, person, "create", creation_changes(PEOPLE, person))
    return person


async def authors(
    session: AsyncSession, account_id: str, user_ids: set[int]
) -> dict[int, tuple[int | None, str]]:
    """(person id, name) of each user: their person in the account, else the user's own name
    without a person id."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(m.Person.user_id, m.Person.id, m.Person.name).where(
            m.Person.account_id == account_id, m.Person.user_id.in_(user_ids)
        )
    )
    found: dict[int, tuple[int | None, str]] = {uid: (pid, name) for uid, pid, name in rows if uid}
    missing = user_ids - found.keys()
    if missing:
        users = await session.execute(select(User.id, User.name).where(User.id.in_(missing)))
        found.update({uid: (None, name) for uid, name in users})
    return found
