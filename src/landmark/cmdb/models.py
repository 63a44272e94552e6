"""The CMDB's tables: configuration items and the records they reference.

Every table carries `account_id` and leads its indexes with it (see DESIGN.md, Data). Ids are
integers, as in Xurrent. Columns are named in Python style; the API names (`sourceID`,
`support_team`, ...) are mapped in `cmdb/schema.py`.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from landmark.core import clock
from landmark.core.db import Base, JSONType

MONEY = Numeric(14, 2)


class Record:
    """Columns every CMDB record has."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str | None] = mapped_column(String(30))
    source_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    @declared_attr
    def account_id(cls) -> Mapped[str]:
        return mapped_column(ForeignKey("accounts.id"))


def _ref(table: str) -> Mapped[int | None]:
    return mapped_column(ForeignKey(f"{table}.id", ondelete="SET NULL"))


def _indexes(table: str, *extra: tuple[str, ...]) -> tuple[Index, ...]:
    """The indexes every record table has (source lookup, name order), plus `extra` ones."""
    return (
        Index(f"ix_{table}_account_source", "account_id", "source", "source_id"),
        *(Index(f"ix_{table}_account_{'_'.join(cols)}", "account_id", *cols) for cols in extra),
    )


# The CI list's sorted indexes carry the columns its usual filters test (PostgreSQL INCLUDE), so
# that the list's exact count (X-Pagination-Total-Entries) is an index-only scan.
CI_LIST_INDEXES = (
    ("label",),
    ("status", "label"),
    ("support_team_id", "label"),
    ("category_id", "label"),
)
CI_LIST_INCLUDE = ("hidden", "status", "support_team_id")


def _ci_list_index(*cols: str) -> Index:
    include = [c for c in CI_LIST_INCLUDE if c not in cols]
    return Index(
        f"ix_cis_account_{'_'.join(cols)}", "account_id", *cols, postgresql_include=include
    )


class ProductCategory(Record, Base):
    __tablename__ = "product_categories"
    __table_args__ = _indexes("product_categories", ("name",), ("reference",))
    name: Mapped[str] = mapped_column(String(255))
    group: Mapped[str] = mapped_column(String(255))
    rule_set: Mapped[str] = mapped_column(String(40))
    reference: Mapped[str] = mapped_column(String(80))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class Organization(Record, Base):
    __tablename__ = "organizations"
    __table_args__ = _indexes("organizations", ("name",))
    name: Mapped[str] = mapped_column(String(128))
    parent_id: Mapped[int | None] = _ref("organizations")
    # No foreign key: people refer to organizations, and SQLite cannot add one after the fact.
    manager_id: Mapped[int | None] = mapped_column(Integer)
    financial_id: Mapped[str | None] = mapped_column(String(128))
    remarks: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    parent: Mapped["Organization | None"] = relationship(remote_side="Organization.id")
    manager: Mapped["Person | None"] = relationship(
        primaryjoin="Organization.manager_id == Person.id", foreign_keys=[manager_id]
    )


class Site(Record, Base):
    __tablename__ = "sites"
    __table_args__ = _indexes("sites", ("name",))
    name: Mapped[str] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(512))
    city: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str | None] = mapped_column(String(128))
    zip: Mapped[str | None] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(String(2))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    remarks: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class Person(Record, Base):
    __tablename__ = "people"
    __table_args__ = (
        *_indexes("people", ("name",)),
        Index("ix_people_account_email", "account_id", text("lower(primary_email)")),
        Index("ix_people_account_user", "account_id", "user_id"),
    )
    name: Mapped[str] = mapped_column(String(128))
    primary_email: Mapped[str] = mapped_column(String(128))
    organization_id: Mapped[int | None] = _ref("organizations")
    site_id: Mapped[int | None] = _ref("sites")
    manager_id: Mapped[int | None] = _ref("people")
    job_title: Mapped[str | None] = mapped_column(String(128))
    location: Mapped[str | None] = mapped_column(String(128))
    employee_id: Mapped[str | None] = mapped_column(String(128))
    support_id: Mapped[str | None] = mapped_column(String(128))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(16))
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    information: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The signed-in user this person stands for (GET /v1/me), if any.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    organization: Mapped["Organization | None"] = relationship(foreign_keys=[organization_id])
    site: Mapped["Site | None"] = relationship()
    manager: Mapped["Person | None"] = relationship(remote_side="Person.id")


class Team(Record, Base):
    __tablename__ = "teams"
    __table_args__ = _indexes("teams", ("name",))
    name: Mapped[str] = mapped_column(String(128))
    coordinator_id: Mapped[int | None] = _ref("people")
    manager_id: Mapped[int | None] = _ref("people")
    configuration_manager_id: Mapped[int | None] = _ref("people")
    remarks: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    coordinator: Mapped["Person | None"] = relationship(foreign_keys=[coordinator_id])
    manager: Mapped["Person | None"] = relationship(foreign_keys=[manager_id])
    configuration_manager: Mapped["Person | None"] = relationship(
        foreign_keys=[configuration_manager_id]
    )


class TeamMember(Base):
    __tablename__ = "team_members"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    __table_args__ = (Index("ix_team_members_account_person", "account_id", "person_id"),)


class Service(Record, Base):
    __tablename__ = "services"
    __table_args__ = _indexes("services", ("name",))
    name: Mapped[str] = mapped_column(String(255))
    provider_id: Mapped[int | None] = _ref("organizations")
    support_team_id: Mapped[int | None] = _ref("teams")
    service_owner_id: Mapped[int | None] = _ref("people")
    impact: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    keywords: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    provider: Mapped["Organization | None"] = relationship()
    support_team: Mapped["Team | None"] = relationship()
    service_owner: Mapped["Person | None"] = relationship()


class Product(Record, Base):
    __tablename__ = "products"
    __table_args__ = _indexes("products", ("name",), ("category_id",))
    name: Mapped[str] = mapped_column(String(255))
    brand: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    product_id: Mapped[str | None] = mapped_column(String(128))  # the API's productID
    category_id: Mapped[int] = mapped_column(ForeignKey("product_categories.id"))
    support_team_id: Mapped[int | None] = _ref("teams")
    service_id: Mapped[int | None] = _ref("services")
    supplier_id: Mapped[int | None] = _ref("organizations")
    financial_owner_id: Mapped[int | None] = _ref("organizations")
    depreciation_method: Mapped[str | None] = mapped_column(String(40))
    useful_life: Mapped[int | None]
    salvage_value: Mapped[Decimal | None] = mapped_column(MONEY)
    rate: Mapped[Decimal | None] = mapped_column(MONEY)
    remarks: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    category: Mapped["ProductCategory"] = relationship()
    support_team: Mapped["Team | None"] = relationship()
    service: Mapped["Service | None"] = relationship()
    supplier: Mapped["Organization | None"] = relationship(foreign_keys=[supplier_id])
    financial_owner: Mapped["Organization | None"] = relationship(foreign_keys=[financial_owner_id])


class ConfigurationItem(Record, Base):
    __tablename__ = "cis"
    __table_args__ = (
        *_indexes("cis", ("name",), ("product_id",), ("updated_at",)),
        *(_ci_list_index(*cols) for cols in CI_LIST_INDEXES),
        UniqueConstraint("account_id", "brand_serial"),
        # label and serial_nr filters compare without case (see core/query.py)
        Index("ix_cis_account_lower_label", "account_id", text("lower(label)")),
        Index("ix_cis_account_lower_serial_nr", "account_id", text("lower(serial_nr)")),
    )
    label: Mapped[str | None] = mapped_column(String(160))
    name: Mapped[str] = mapped_column(String(160))
    status: Mapped[str] = mapped_column(String(30))
    # Where the CI is, besides its status: None (in the lists), "archived" or "trashed".
    hidden: Mapped[str | None] = mapped_column(String(10))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("product_categories.id"))  # the product's
    rule_set: Mapped[str] = mapped_column(String(40))
    alternate_names: Mapped[list[str] | None] = mapped_column(JSONType)
    asset_id: Mapped[str | None] = mapped_column(String(50))
    system_id: Mapped[str | None] = mapped_column(String(255))
    serial_nr: Mapped[str | None] = mapped_column(String(50))
    # lower(brand) + "\x1f" + lower(serial_nr): unique in the account when the serial is set.
    brand_serial: Mapped[str | None] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(128))
    location_hint: Mapped[str | None] = mapped_column(String(2048))
    remarks: Mapped[str | None] = mapped_column(Text)
    support_team_id: Mapped[int | None] = _ref("teams")
    service_id: Mapped[int | None] = _ref("services")
    site_id: Mapped[int | None] = _ref("sites")
    supplier_id: Mapped[int | None] = _ref("organizations")
    financial_owner_id: Mapped[int | None] = _ref("organizations")
    workflow_manager_id: Mapped[int | None] = _ref("people")
    in_use_since: Mapped[date | None] = mapped_column(Date)
    warranty_expiry_date: Mapped[date | None] = mapped_column(Date)
    license_expiry_date: Mapped[date | None] = mapped_column(Date)
    end_of_support_date: Mapped[date | None] = mapped_column(Date)
    last_seen_at: Mapped[datetime | None]
    license_type: Mapped[str | None] = mapped_column(String(40))
    nr_of_licenses: Mapped[int | None]
    nr_of_processors: Mapped[int | None]
    nr_of_cores: Mapped[int | None]
    site_license: Mapped[bool | None] = mapped_column(Boolean)
    temporary_license: Mapped[bool | None] = mapped_column(Boolean)
    po_nr: Mapped[str | None] = mapped_column(String(128))
    purchase_value: Mapped[Decimal | None] = mapped_column(MONEY)
    salvage_value: Mapped[Decimal | None] = mapped_column(MONEY)
    rate: Mapped[Decimal | None] = mapped_column(MONEY)
    useful_life: Mapped[int | None]
    depreciation_method: Mapped[str | None] = mapped_column(String(40))
    custom_fields: Mapped[list[Any] | None] = mapped_column(JSONType)
    recurrence: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    attachments: Mapped[list[Any] | None] = mapped_column(JSONType)

    product: Mapped["Product"] = relationship()
    support_team: Mapped["Team | None"] = relationship()
    service: Mapped["Service | None"] = relationship()
    site: Mapped["Site | None"] = relationship()
    supplier: Mapped["Organization | None"] = relationship(foreign_keys=[supplier_id])
    financial_owner: Mapped["Organization | None"] = relationship(foreign_keys=[financial_owner_id])
    workflow_manager: Mapped["Person | None"] = relationship()


class CIRelation(Base):
    """A directed relation: `ci` is the parent of `child` (shown as "child" from the parent)."""

    __tablename__ = "ci_relations"
    __table_args__ = (
        UniqueConstraint("account_id", "ci_id", "child_id"),
        Index("ix_ci_relations_account_child", "account_id", "child_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    ci_id: Mapped[int] = mapped_column(ForeignKey("cis.id", ondelete="CASCADE"))
    child_id: Mapped[int] = mapped_column(ForeignKey("cis.id", ondelete="CASCADE"))
    source: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class CIUser(Base):
    __tablename__ = "ci_users"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    ci_id: Mapped[int] = mapped_column(ForeignKey("cis.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    __table_args__ = (Index("ix_ci_users_account_person", "account_id", "person_id"),)
