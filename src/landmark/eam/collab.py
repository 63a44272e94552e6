"""Subscriptions, comments and documents of a fact sheet: each write is an outbox event about
the fact sheet (its audit trail). They do not change the fact sheet's `rev`."""

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core.errors import NotFound, ValidationFailed
from landmark.eam import audit
from landmark.eam.change import unit
from landmark.eam.models import ACTIVE, Comment, Document, FactSheet, Subscription
from landmark.identity.authn import Principal
from landmark.identity.models import Membership, User

SUBSCRIPTION_TYPES = ("RESPONSIBLE", "ACCOUNTABLE", "OBSERVER")


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [(field, message)])


async def _fact_sheet(session: AsyncSession, account_id: str, ident: uuid.UUID) -> FactSheet:
    fs = await session.scalar(
        select(FactSheet).where(FactSheet.account_id == account_id, FactSheet.id == ident)
    )
    if fs is None:
        raise NotFound(f"fact sheet {ident} not found", [("factSheetId", "not found")])
    return fs


async def find_member(
    session: AsyncSession, account_id: str, user_id: int | uuid.UUID | None, email: str | None
) -> User:
    """An active member of the account by id, UUID or email (else 404 naming `user`)."""
    query = (
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id, Membership.status == "active")
    )
    if isinstance(user_id, int):
        query = query.where(User.id == user_id)
    elif isinstance(user_id, uuid.UUID):
        query = query.where(User.uuid == user_id)
    elif email:
        query = query.where(func.lower(User.email) == email.lower())
    else:
        raise _bad("user", "a user id or email is required")
    user = await session.scalar(query)
    if user is None:
        raise NotFound("user not found in this workspace", [("user", "not found")])
    return user


def subscription_summary(s: Subscription, user: User) -> dict[str, Any]:
    return {
        "id": str(s.id),
        "type": s.type,
        "roles": list(s.roles),
        "user": {"id": str(user.uuid), "email": user.email},
    }


async def create_subscription(
    session: AsyncSession,
    who: Principal,
    fact_sheet_id: uuid.UUID,
    *,
    user_id: int | uuid.UUID | None = None,
    email: str | None = None,
    type: str,
    roles: list[str] | None = None,
    validate_only: bool = False,
) -> Subscription:
    """Subscribe a member of the account to a fact sheet (one subscription per user)."""
    if type not in SUBSCRIPTION_TYPES:
        raise _bad("type", f"type must be one of {', '.join(SUBSCRIPTION_TYPES)}")
    if roles is not None and not all(isinstance(r, str) and r for r in roles):
        raise _bad("roles", "roles must be a list of role names")
    fs = await _fact_sheet(session, who.account_id, fact_sheet_id)
    user = await find_member(session, who.account_id, user_id, email)
    exists = await session.scalar(
        select(Subscription.id).where(
            Subscription.account_id == who.account_id,
            Subscription.fact_sheet_id == fs.id,
            Subscription.user_id == user.id,
        )
    )
    if exists is not None:
        raise _bad("user", f"{user.email or user.name} is subscribed already")
    async with unit(session, who.account_id, validate_only):
        sub = Subscription(
            id=uuid.uuid4(), account_id=who.account_id, fact_sheet_id=fs.id, user_id=user.id,
            type=type, roles=list(roles or []),
        )  # fmt: skip
        session.add(sub)
        summary = subscription_summary(sub, user)
        await audit.emit(session, who, "SUBSCRIPTION_CREATED", fs, subscription=summary)
    return sub


async def delete_subscription(
    session: AsyncSession, who: Principal, subscription_id: uuid.UUID
) -> None:
    query = select(Subscription, User).join(User, User.id == Subscription.user_id)
    row = (
        await session.execute(
            query.where(
                Subscription.account_id == who.account_id, Subscription.id == subscription_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"subscription {subscription_id} not found")
    sub, user = row
    fs = await _fact_sheet(session, who.account_id, sub.fact_sheet_id)
    async with unit(session, who.account_id, False):
        summary = subscription_summary(sub, user)
        await audit.emit(session, who, "SUBSCRIPTION_DELETED", fs, subscription=summary)
        await session.delete(sub)


async def create_comment(
    session: AsyncSession,
    who: Principal,
    fact_sheet_id: uuid.UUID,
    message: str,
    reply_to: uuid.UUID | None = None,
) -> Comment:
    """A comment on a fact sheet, or a reply to one of its comments."""
    if not isinstance(message, str) or not message.strip() or "\x00" in message:
        raise _bad("message", "message must be a non-empty string")
    fs = await _fact_sheet(session, who.account_id, fact_sheet_id)
    if reply_to is not None:
        parent = await session.scalar(
            select(Comment.id).where(
                Comment.account_id == who.account_id,
                Comment.fact_sheet_id == fs.id,
                Comment.id == reply_to,
            )
        )
        if parent is None:
            raise NotFound(f"comment {reply_to} not found", [("replyTo", "not found")])
    async with unit(session, who.account_id, False):
        comment = Comment(
            id=uuid.uuid4(), account_id=who.account_id, fact_sheet_id=fs.id, reply_to_id=reply_to,
            message=message, status=ACTIVE, user_id=who.user_id,
        )  # fmt: skip
        session.add(comment)
        await session.flush()
        data = {"id": str(comment.id), "message": message, "replyTo": audit.iso_id(reply_to)}
        event = "COMMENT_REPLY_ADDED" if reply_to else "COMMENT_CREATED"
        await audit.emit(session, who, event, fs, comment=data)
    return comment


def document_summary(d: Document) -> dict[str, Any]:
    return {"id": str(d.id), "name": d.name, "url": d.url, "documentType": d.document_type}


async def create_document(
    session: AsyncSession,
    who: Principal,
    fact_sheet_id: uuid.UUID,
    name: str,
    url: str | None = None,
    description: str | None = None,
    document_type: str | None = None,
    validate_only: bool = False,
) -> Document:
    """A document (link) on a fact sheet; origin CUSTOM_LINK."""
    if not isinstance(name, str) or not name.strip() or len(name) > 512:
        raise _bad("name", "name must be a non-empty string (at most 512)")
    if url is not None and (not isinstance(url, str) or len(url) > 4096):
        raise _bad("url", "url must be a string (at most 4096)")
    fs = await _fact_sheet(session, who.account_id, fact_sheet_id)
    async with unit(session, who.account_id, validate_only):
        document = Document(
            id=uuid.uuid4(), account_id=who.account_id, fact_sheet_id=fs.id, name=name, url=url,
            description=description, document_type=document_type, origin="CUSTOM_LINK",
        )  # fmt: skip
        session.add(document)
        await session.flush()
        await audit.emit(session, who, "DOCUMENT_CREATED", fs, document=document_summary(document))
    return document


async def delete_document(session: AsyncSession, who: Principal, document_id: uuid.UUID) -> None:
    document = await session.scalar(
        select(Document).where(Document.account_id == who.account_id, Document.id == document_id)
    )
    if document is None:
        raise NotFound(f"document {document_id} not found")
    fs = await _fact_sheet(session, who.account_id, document.fact_sheet_id)
    async with unit(session, who.account_id, False):
        await audit.emit(session, who, "DOCUMENT_DELETED", fs, document=document_summary(document))
        await session.delete(document)
