"""The architecture inventory's tables: fact sheets, relations, tags, subscriptions, comments,
documents and each account's data model.

Ids are UUIDs, as in LeanIX. Every table carries `account_id` and leads its indexes with it
(DESIGN.md, Data). A fact sheet's typed fields live in one JSON column (`fields`) because the
data model, not the schema, decides which fields exist; what queries filter on most (type,
status, name, external id, parent) is kept in columns of its own.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from landmark.core import clock
from landmark.core.db import Base

ACTIVE = "ACTIVE"
ARCHIVED = "ARCHIVED"


def _account() -> Mapped[str]:
    return mapped_column(ForeignKey("accounts.id"))


def _fact_sheet() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("eam_fact_sheets.id", ondelete="CASCADE"))


class FactSheet(Base):
    __tablename__ = "eam_fact_sheets"
    __table_args__ = (
        Index("ix_eam_fact_sheets_account_type", "account_id", "type", "status", "name"),
        Index("ix_eam_fact_sheets_account_external", "account_id", "external_id"),
        Index("ix_eam_fact_sheets_account_parent", "account_id", "parent_id"),
        # Full-text search is `name ILIKE`: a trigram index on the name serves it on PostgreSQL
        # when pg_trgm is available (migrations 0006 and 0009, docs/decisions.md).
        Index("ix_eam_fact_sheets_account_lname", "account_id", text("lower(name)")),
    )  # PostgreSQL: fillfactor 80 (migration 0010), so that updates stay on their page (HOT)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[str] = _account()
    type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))
    display_name: Mapped[str] = mapped_column(String(4096))
    full_name: Mapped[str] = mapped_column(String(4096))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    level: Mapped[int] = mapped_column(Integer, default=1)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("eam_fact_sheets.id", ondelete="SET NULL")
    )
    rev: Mapped[int] = mapped_column(Integer, default=1)
    completion: Mapped[float] = mapped_column(Float, default=0.0)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    external_id: Mapped[str | None] = mapped_column(String(512))
    # phase -> start date of the `lifecycle` field, flat so that SQL can find the phase at a date.
    phase_dates: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The ids of its tags (text, sorted): a copy of its eam_fact_sheet_tags rows kept by the write
    # path (eam/tags.py), so that PostgreSQL finds a tag's fact sheets in a GIN index.
    tag_ids: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    archived_at: Mapped[datetime | None]
    archive_comment: Mapped[str | None] = mapped_column(Text)


class Relation(Base):
    """A relation stored once, under its FROM-side name (e.g. relApplicationToITComponent)."""

    __tablename__ = "eam_relations"
    __table_args__ = (
        Index("ix_eam_relations_account_from", "account_id", "from_id", "type"),
        Index("ix_eam_relations_account_to", "account_id", "to_id", "type"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[str] = _account()
    type: Mapped[str] = mapped_column(String(128))
    from_id: Mapped[uuid.UUID] = _fact_sheet()
    to_id: Mapped[uuid.UUID] = _fact_sheet()
    active_from: Mapped[str | None] = mapped_column(String(10))  # yyyy-mm-dd, as LeanIX
    active_until: Mapped[str | None] = mapped_column(String(10))
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class TagGroup(Base):
    __tablename__ = "eam_tag_groups"
    __table_args__ = (Index("ix_eam_tag_groups_account_name", "account_id", "name"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[str] = _account()
    name: Mapped[str] = mapped_column(String(255))
    short_name: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16), default="MULTIPLE")
    mandatory: Mapped[bool] = mapped_column(Boolean, default=False)
    restrict_to_types: Mapped[list[str]] = mapped_column(default=list)


class Tag(Base):
    """A tag; `tag_group_id` None means the group "Other tags"."""

    __tablename__ = "eam_tags"
    __table_args__ = (
        Index("ix_eam_tags_account_group_name", "account_id", "tag_group_id", "name"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[str] = _account()
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    tag_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("eam_tag_groups.id", ondelete="CASCADE")
    )


class FactSheetTag(Base):
    __tablename__ = "eam_fact_sheet_tags"
    __table_args__ = (Index("ix_eam_fact_sheet_tags_account_tag", "account_id", "tag_id"),)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    fact_sheet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("eam_fact_sheets.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("eam_tags.id", ondelete="CASCADE"), primary_key=True
    )


class Subscription(Base):
    __tablename__ = "eam_subscriptions"
    __table_args__ = (
        Index("ix_eam_subscriptions_account_fs", "account_id", "fact_sheet_id"),
        Index("ix_eam_subscriptions_account_user", "account_id", "user_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[str] = _account()
    fact_sheet_id: Mapped[uuid.UUID] = _fact_sheet()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    type: Mapped[str] = mapped_column(String(16))
    roles: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Comment(Base):
    __tablename__ = "eam_comments"
    __table_args__ = (Index("ix_eam_comments_account_fs", "account_id", "fact_sheet_id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[str] = _account()
    fact_sheet_id: Mapped[uuid.UUID] = _fact_sheet()
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("eam_comments.id", ondelete="CASCADE")
    )
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Document(Base):
    __tablename__ = "eam_documents"
    __table_args__ = (Index("ix_eam_documents_account_fs", "account_id", "fact_sheet_id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[str] = _account()
    fact_sheet_id: Mapped[uuid.UUID] = _fact_sheet()
    name: Mapped[str] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(String(4096))
    description: Mapped[str | None] = mapped_column(Text)
    document_type: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(64), default="CUSTOM_LINK")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class DataModel(Base):
    """An account's data model (meta model) as LeanIX JSON; `version` +1 on every change."""

    __tablename__ = "eam_data_models"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    model: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
