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
    require_present,
)
from landmark.core import clock
from landmark.core.db import one_of
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
    ci = new_ci(who.account_id, product, values, write)
    await _apply_rules(session, ci, product, values)
    if ci.label is None:
        ci.label = await next_label(session, who.account_id, ci.category_id)
    session.add(ci)
    await audit(session, who, CIS, ci, "create", creation_changes(CIS, ci))
    return ci, True


def new_ci(
    account_id: str, product: m.Product, values: Values, write: Write, make: Any = CI
) -> Any:
    """A CI not yet saved: its source, the product's defaults, then the given values. `make`
    builds the object (the batch path of imports passes plain ones, imports.NewCI)."""
    ci = make(account_id=account_id)
    ci.source = values.pop("source", None) or write.source_hint or DEFAULT_SOURCE
    for name in PRODUCT_DEFAULTS:
        if values.get(name) is None:
            column = CIS.by_name[name].column
            values[name] = getattr(product, column)
    assign(CIS, ci, {k: v for k, v in values.items() if v is not None})
    return ci


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
    require_present(CIS, values)
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
    apply_rules(ci, product, category, values)
    await _check_serial(session, ci)


def apply_rules(
    ci: m.ConfigurationItem, product: m.Product, category: m.ProductCategory, values: Values
) -> None:
    """The rules that need no query (the single and the batch path share them)."""
    ci.category_id = category.id
    is_certificate = category.rule_set == "software" and ci.license_type is not None
    ci.rule_set = "license_certificate" if is_certificate else category.rule_set
    if ci.support_team_id is None and ci.status != "removed":
        raise invalid("support_team_id", "Support team is required unless the status is removed")
    ci.brand_serial = brand_serial(product.brand, ci.serial_nr)
    if "remarks_attachments" in values or "custom_fields_attachments" in values:
        given = [
            *(values.get("remarks_attachments") or []),
            *(values.get("custom_fields_attachments") or []),
        ]
        ci.attachments = given or ci.attachments


SERIAL_TAKEN = "Serial number has already been taken for this product brand"


async def _check_serial(session: AsyncSession, ci: m.ConfigurationItem) -> None:
    """The CI's brand+serial key (set by `apply_rules`) must be free in the account."""
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
        raise invalid("serial_nr", SERIAL_TAKEN)


async def serials_taken(session: AsyncSession, account_id: str, keys: set[str]) -> dict[str, int]:
    """Batch path: which of these brand+serial keys CIs hold already ({key: ci id})."""
    if not keys:
        return {}
    rows = await session.execute(
        select(CI.brand_serial, CI.id).where(
            CI.account_id == account_id, one_of(session, CI.brand_serial, keys)
        )
    )
    return {key: ident for key, ident in rows.tuples() if key is not None}


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
        ci.brand_serial = brand_serial(product.brand, ci.serial_nr)
        await _check_serial(session, ci)


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
    prefix, width, number = await label_scheme(session, account_id, category_id)
    while await session.scalar(
        select(
            exists().where(CI.account_id == account_id, CI.label == _label(prefix, width, number))
        )
    ):
        number += 1
    return _label(prefix, width, number)


async def label_scheme(
    session: AsyncSession, account_id: str, category_id: int
) -> tuple[str, int, int]:
    """The category's label prefix and width, and the first number above the highest in use."""
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
    return prefix, width, number


class LabelCounter:
    """Batch path: `next_label` for many new CIs, with the counter of each category in memory."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.schemes: dict[int, tuple[str, int, int]] = {}

    async def labels(
        self, session: AsyncSession, category_id: int, count: int, exclude: set[str]
    ) -> list[str]:
        """`count` free labels of the category (none in `exclude`), in one query (more on a
        clash)."""
        if category_id not in self.schemes:
            self.schemes[category_id] = await label_scheme(session, self.account_id, category_id)
        result: list[str] = []
        while len(result) < count:
            prefix, width, number = self.schemes[category_id]
            wanted = [_label(prefix, width, n) for n in range(number, number + count - len(result))]
            taken = await self._taken(session, wanted)
            result += [label for label in wanted if label not in taken and label not in exclude]
            self.schemes[category_id] = (prefix, width, number + len(wanted))
        return result

    async def _taken(self, session: AsyncSession, wanted: list[str]) -> set[str]:
        """Which of `wanted` (one prefix, consecutive numbers) CIs hold already. When they have
        one width, a range of the label index: zero-padded numbers after one prefix sort as
        numbers under any collation, so the range holds them all (and whatever else it returns
        is dropped here); cheaper than looking up a thousand labels one by one."""
        condition: Any
        if len(wanted[0]) == len(wanted[-1]):
            condition = CI.label.between(wanted[0], wanted[-1])
        else:
            condition = one_of(session, CI.label, wanted)
        found = await session.scalars(
            select(CI.label).where(CI.account_id == self.account_id, condition)
        )
        return set(wanted).intersection(found)


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
            raise invalid("id", "is neither archived nor trashed")
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
