"""The rules of configuration items (seed 003), each written once.

- `rule_set` is the product category's, or `license_certificate` for a software CI with a
  license type; `software` and `ci_type` derive from it.
- On create, name, remarks, service, support team, supplier and financial owner default from the
  product; a missing label is generated (`next_label`).
- A POST naming an inactive CI by name or label updates that CI (discovery tools).
- Product brand plus serial number is unique in the account, without case.
- The support team is required unless the status is `removed`.
- Archive, trash and restore move a CI out of the lists and back (to the inactive ones).
"""

import re
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.cmdb import models as m
from landmark.cmdb.schema import CIS, INACTIVE_STATUSES
from landmark.cmdb.service import (
    Values,
    Write,
    assign,
    audit,
    check_references,
    creation_changes,
    invalid,
    not_this,
    parse_input,
)
from landmark.core import clock
from landmark.core.errors import ValidationFailed
from landmark.identity.authn import Principal

CI = m.ConfigurationItem
DEFAULT_SOURCE = "Landmark API"
PRODUCT_DEFAULTS = ("name", "remarks", "service", "support_team", "supplier", "financial_owner")
LABEL_NUMBER = re.compile(r"^(.*?)(\d+)$")
DEFAULT_LABEL = ("CI", 5)  # prefix and width when the category has no numbered CI yet


def derived(ci: m.ConfigurationItem) -> dict[str, Any]:
    """The read-only fields computed from the rule set."""
    return {
        "software": ci.rule_set == "software",
        "ci_type": {
            "software": "software_version",
            "license_certificate": "software_license_certificate",
        }.get(ci.rule_set, "hardware"),
    }


async def create(
    session: AsyncSession, who: Principal, body: Any, write: Write
) -> tuple[m.ConfigurationItem, bool]:
    """A new CI, or the inactive CI of that name or label updated; True when created."""
    values = parse_input(CIS, body, creating=True)
    existing = await _inactive_namesake(session, who.account_id, values)
    if existing is not None:
        await update(session, who, existing, body, values)
        return existing, False
    await check_references(session, who.account_id, CIS, values)
    product = await session.get_one(m.Product, values["product"])
    ci = CI(account_id=who.account_id)
    ci.source = values.pop("source", None) or write.source_hint or DEFAULT_SOURCE
    for name in PRODUCT_DEFAULTS:
        if values.get(name) is None:
            column = CIS.by_name[name].column
            values[name] = getattr(product, column)
    assign(CIS, ci, {k: v for k, v in values.items() if v is not None})
    await _apply_rules(session, ci, product, values)
    if ci.label is None:
        ci.label = await next_label(session, who.account_id, ci.category_id)
    session.add(ci)
    await audit(session, who, CIS, ci, "create", creation_changes(CIS, ci))
    return ci, True


async def update(
    session: AsyncSession,
    who: Principal,
    ci: m.ConfigurationItem,
    body: Any,
    values: Values | None = None,
) -> m.ConfigurationItem:
    if values is None:
        values = parse_input(CIS, body, creating=False)
    await check_references(session, who.account_id, CIS, values)
    for required in ("product", "status"):
        if required in values and values[required] is None:
            raise invalid(f"{required}_id" if required == "product" else required, "is required")
    changes = assign(CIS, ci, values)
    product = await session.get_one(m.Product, ci.product_id)
    await _apply_rules(session, ci, product, values)
    if changes:
        ci.updated_at = clock.now()
        await audit(session, who, CIS, ci, "update", changes)
    return ci


async def _apply_rules(
    session: AsyncSession, ci: m.ConfigurationItem, product: m.Product, values: Values
) -> None:
    category = await session.get_one(m.ProductCategory, product.category_id)
    ci.category_id = category.id
    is_certificate = category.rule_set == "software" and ci.license_type is not None
    ci.rule_set = "license_certificate" if is_certificate else category.rule_set
    if ci.support_team_id is None and ci.status != "removed":
        raise invalid("support_team_id", "Support team is required unless the status is removed")
    await _check_serial(session, ci, product)
    if (
        ci.attachments is None
        or "remarks_attachments" in values
        or "custom_fields_attachments" in values
    ):
        ci.attachments = (values.get("remarks_attachments") or []) + (
            values.get("custom_fields_attachments") or []
        ) or ci.attachments


async def _check_serial(session: AsyncSession, ci: m.ConfigurationItem, product: m.Product) -> None:
    ci.brand_serial = brand_serial(product.brand, ci.serial_nr)
    if ci.brand_serial is None:
        return
    with session.no_autoflush:  # flushing the change first would hit the unique index
        taken = await session.scalar(
            select(
                exists().where(
                    CI.account_id == ci.account_id,
                    CI.brand_serial == ci.brand_serial,
                    not_this(CI, ci),
                )
            )
        )
    if taken:
        raise invalid("serial_nr", "Serial number has already been taken for this product brand")


def brand_serial(brand: str | None, serial_nr: str | None) -> str | None:
    """The key that makes product brand plus serial number unique in an account, without case."""
    if not serial_nr:
        return None
    return f"{(brand or '').lower()}\x1f{serial_nr.lower()}"


async def rekey_serials(session: AsyncSession, product: m.Product) -> None:
    """A product's brand changed: its CIs' brand+serial keys follow (and must stay unique)."""
    cis = (
        await session.scalars(
            select(CI).where(CI.account_id == product.account_id, CI.product_id == product.id)
        )
    ).all()
    for ci in cis:
        await _check_serial(session, ci, product)


async def _inactive_namesake(
    session: AsyncSession, account_id: str, values: Values
) -> m.ConfigurationItem | None:
    """The inactive CI whose name or label the new one would take, if any."""
    names = [
        clause
        for clause in (
            CI.name == values["name"] if values.get("name") else None,
            CI.label == values["label"] if values.get("label") else None,
        )
        if clause is not None
    ]
    if not names:
        return None
    return (
        await session.scalars(
            select(CI)
            .where(
                CI.account_id == account_id,
                CI.status.in_(INACTIVE_STATUSES),
                CI.hidden.is_(None),
                or_(*names),
            )
            .order_by(CI.id)
            .limit(1)
        )
    ).first()


async def next_label(session: AsyncSession, account_id: str, category_id: int) -> str:
    """The prefix of the category's latest numbered CI and the next free number, padded alike."""
    latest = await session.scalar(
        select(CI.label)
        .where(CI.account_id == account_id, CI.category_id == category_id, CI.label.is_not(None))
        .order_by(CI.id.desc())
        .limit(1)
    )
    match = LABEL_NUMBER.match(latest or "")
    prefix, width = (match.group(1), len(match.group(2))) if match else DEFAULT_LABEL
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    top = await session.scalar(
        select(func.max(CI.label)).where(
            CI.account_id == account_id,
            CI.category_id == category_id,
            CI.label.like(f"{escaped}%", escape="\\"),
            func.length(CI.label) == len(prefix) + width,
        )
    )
    number = int(top[len(prefix) :]) + 1 if top and top[len(prefix) :].isdigit() else 1
    while await session.scalar(
        select(
            exists().where(CI.account_id == account_id, CI.label == _label(prefix, width, number))
        )
    ):
        number += 1
    return _label(prefix, width, number)


def _label(prefix: str, width: int, number: int) -> str:
    return f"{prefix}{number:0{width}d}"


# --- archive, trash, restore ------------------------------------------------------------------


async def move(
    session: AsyncSession, who: Principal, ci: m.ConfigurationItem, action: str
) -> m.ConfigurationItem:
    """Archive or trash a CI (out of the lists), or restore it (back among the inactive CIs)."""
    changes: dict[str, list[Any]] = {}
    if action == "restore":
        if ci.hidden is None:
            raise ValidationFailed("Validation Failed", [("id", "is neither archived nor trashed")])
        changes["hidden"] = [ci.hidden, None]
        ci.hidden = None
        if ci.status not in INACTIVE_STATUSES:
            changes["status"] = [ci.status, "archived"]
            ci.status = "archived"
    else:
        state = {"archive": "archived", "trash": "trashed"}[action]
        changes["hidden"] = [ci.hidden, state]
        ci.hidden = state
    ci.updated_at = clock.now()
    await audit(session, who, CIS, ci, action, changes)
    return ci
