"""Creating, changing and reading CMDB records: the rules every resource shares.

Each write validates its input against `cmdb/schema.py`, checks that every reference names a record
of the same account (an id of another account is "not found", never a leak), applies the
resource's own rules (`RULES`), and records an audit entry and an outbox event in the same
transaction. The CI's own rules live in `cmdb/cis.py`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.cmdb import models as m
from landmark.cmdb import reads
from landmark.cmdb.schema import BY_MODEL, RESOURCES, Field, Resource
from landmark.cmdb.values import BadValue, parse_value, plain
from landmark.core import clock
from landmark.core.errors import ValidationFailed
from landmark.core.events import record, record_many
from landmark.identity.authn import Principal

Values = dict[str, Any]  # field name -> parsed value
Rule = Callable[[AsyncSession, Principal, Any, Values, bool], Awaitable[None]]


@dataclass
class Write:
    """What a write request brings besides its body."""

    source_hint: str | None = None  # X-Xurrent-Source / X-4me-Source, else User-Agent


def parse_input(resource: Resource, body: Any, *, creating: bool) -> Values:
    """The writable fields present in `body`, parsed; 422 naming every bad field at once.

    Unknown and read-only keys are ignored, as Xurrent does, so that clients sending extra
    attributes keep working.
    """
    if not isinstance(body, dict):
        raise ValidationFailed("Validation Failed", [("body", "must be a JSON object")])
    values: Values = {}
    errors: list[tuple[str, str]] = []
    for field in resource.fields:
        if field.readonly or field.input_name not in body:
            continue
        try:
            values[field.name] = parse_value(field, body[field.input_name])
        except BadValue as exc:
            errors.append((field.input_name, f"{_label(field)} {exc}"))
    if creating:
        errors += [
            (f.input_name, f"{_label(f)} is required")
            for f in resource.fields
            if f.required and values.get(f.name) is None and f.input_name not in dict(errors)
        ]
    if errors:
        raise ValidationFailed("Validation Failed", errors)
    return values


def _label(field: Field) -> str:
    return field.name.replace("_", " ").capitalize()


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed("Validation Failed", [(field, message)])


async def check_references(
    session: AsyncSession, account_id: str, resource: Resource, values: Values
) -> None:
    """Every reference must name a record of this account (else 422 on `<field>_id`)."""
    for field in resource.fields:
        ident = values.get(field.name) if field.kind == "reference" else None
        if ident is None:
            continue
        model = RESOURCES[field.target].model
        found = await session.scalar(
            select(exists().where(model.id == ident, model.account_id == account_id))
        )
        if not found:
            raise invalid(field.input_name, f"{_label(field)} {ident} not found")


def assign(resource: Resource, obj: Any, values: Values) -> dict[str, list[Any]]:
    """Set the values on the record; return the changes as {field: [old, new]}."""
    changes: dict[str, list[Any]] = {}
    for name, new in values.items():
        field = resource.by_name[name]
        old = getattr(obj, field.column)
        if old != new:
            setattr(obj, field.column, new)
            changes[name] = [plain(old), plain(new)]
    return changes


async def audit(
    session: AsyncSession,
    who: Principal,
    resource: Resource,
    obj: Any,
    action: str,
    changes: dict[str, list[Any]],
) -> int:
    """The audit entry and outbox event of a change; returns the audit line id."""
    await session.flush()
    event = await record(
        session,
        who.account_id,
        f"{resource.singular}.{action}",
        resource.singular,
        obj.id,
        who.actor,
        _audit_data(action, changes),
    )
    return event.seq


async def audit_many(
    session: AsyncSession,
    who: Principal,
    resource: Resource,
    entries: list[tuple[Any, str, dict[str, list[Any]]]],
) -> None:
    """`audit` for many saved records at once (bulk imports): entries are (obj, action, changes)."""
    items = [
        (f"{resource.singular}.{action}", resource.singular, obj.id, _audit_data(action, changes))
        for obj, action, changes in entries
    ]
    await record_many(session, who.account_id, items, who.actor)


def _audit_data(action: str, changes: dict[str, list[Any]]) -> dict[str, Any]:
    return {"action": action, "changes": changes}


def creation_changes(resource: Resource, obj: Any) -> dict[str, list[Any]]:
    """The audit changes of a new record: its values are those set on it (its __dict__)."""
    values = {
        f.name: vars(obj).get(f.column)
        for f in resource.fields
        if not f.readonly and f.kind != "attachments"
    }
    return {name: [None, plain(v)] for name, v in values.items() if v not in (None, False, [], {})}


async def create(
    session: AsyncSession, who: Principal, resource: Resource, body: Any, write: Write
) -> Any:
    """A new record of `resource` (not a CI: see cmdb/cis.py), audited. The caller commits."""
    values = parse_input(resource, body, creating=True)
    await check_references(session, who.account_id, resource, values)
    obj = resource.model(account_id=who.account_id)
    obj.source = values.pop("source", None) or write.source_hint
    assign(resource, obj, values)
    await RULES.get(resource.name, _no_rule)(session, who, obj, values, True)
    session.add(obj)
    await audit(session, who, resource, obj, "create", creation_changes(resource, obj))
    return obj


async def update(
    session: AsyncSession, who: Principal, resource: Resource, obj: Any, body: Any
) -> Any:
    """Apply a PATCH to a record (not a CI), audited when something changed."""
    values = parse_input(resource, body, creating=False)
    await check_references(session, who.account_id, resource, values)
    require_present(resource, values)
    changes = assign(resource, obj, values)
    await RULES.get(resource.name, _no_rule)(session, who, obj, values, False)
    if changes:
        obj.updated_at = clock.now()
        await audit(session, who, resource, obj, "update", changes)
    return obj


def require_present(resource: Resource, values: Values) -> None:
    """A PATCH may not blank a required field."""
    for name, value in values.items():
        field = resource.by_name[name]
        if field.required and value is None:
            raise invalid(field.input_name, f"{_label(field)} is required")


async def _no_rule(*_: Any) -> None:
    return None


# --- reading --------------------------------------------------------------------------------


def scoped(resource: Resource, account_id: str) -> Select[Any]:
    """The account's records of `resource`, as ORM instances to change (reads: cmdb/reads.py)."""
    return select(resource.model).where(resource.model.account_id == account_id)


async def get(session: AsyncSession, resource: Resource, account_id: str, ident: int) -> Any:
    obj = (
        await session.execute(scoped(resource, account_id).where(resource.model.id == ident))
    ).scalar_one_or_none()
    if obj is None:
        raise reads.not_found(resource)
    return obj


async def reload(session: AsyncSession, obj: Any) -> Any:
    """The record as the API shows it, after the pending changes (see cmdb/reads.py)."""
    await session.flush()
    return await reads.get(session, BY_MODEL[type(obj)], obj.account_id, obj.id)


# --- the rules of the other resources ---------------------------------------------------------


def not_this(model: Any, obj: Any) -> Any:
    """Rows other than `obj` (all rows while `obj` is not yet saved)."""
    return model.id != obj.id if obj.id is not None else true()


async def _unique_name(
    session: AsyncSession, model: Any, obj: Any, column: Any, value: str, field: str, what: str
) -> None:
    query = select(
        exists().where(
            model.account_id == obj.account_id,
            func.lower(column) == value.lower(),
            not_this(model, obj),
        )
    )
    if await session.scalar(query):
        raise invalid(field, f"{what} has already been taken")


async def _product_category_rules(
    session: AsyncSession, who: Principal, obj: m.ProductCategory, values: Values, creating: bool
) -> None:
    """The reference is "group/name" in lower case; it and the rule set freeze once in use."""
    reference = f"{obj.group}/{obj.name}".lower().replace(" ", "_")[:80]
    in_use = not creating and await session.scalar(
        select(exists().where(m.Product.category_id == obj.id))
    )
    if in_use and (reference != obj.reference or "rule_set" in values):
        frozen = "rule_set" if "rule_set" in values else "name"
        raise invalid(frozen, "cannot change once products use this category")
    obj.reference = reference
    await _unique_name(
        session,
        m.ProductCategory,
        obj,
        m.ProductCategory.reference,
        reference,
        "name",
        "Reference",
    )


async def _team_rules(
    session: AsyncSession, who: Principal, obj: m.Team, values: Values, creating: bool
) -> None:
    if "name" in values:
        await _unique_name(session, m.Team, obj, m.Team.name, obj.name, "name", "Name")


async def _person_rules(
    session: AsyncSession, who: Principal, obj: m.Person, values: Values, creating: bool
) -> None:
    if "primary_email" in values:
        await _unique_name(
            session,
            m.Person,
            obj,
            m.Person.primary_email,
            obj.primary_email,
            "primary_email",
            "Primary email",
        )


async def _service_rules(
    session: AsyncSession, who: Principal, obj: m.Service, values: Values, creating: bool
) -> None:
    if "provider" in values:
        disabled = await session.scalar(
            select(m.Organization.disabled).where(m.Organization.id == obj.provider_id)
        )
        if disabled:
            raise invalid("provider_id", "Provider must be an enabled organization")


async def _product_rules(
    session: AsyncSession, who: Principal, obj: m.Product, values: Values, creating: bool
) -> None:
    """Brand plus productID is unique in the account; a new brand re-keys its CIs' serials."""
    if obj.product_id and ("brand" in values or "productID" in values):
        taken = await session.scalar(
            select(
                exists().where(
                    m.Product.account_id == obj.account_id,
                    func.lower(func.coalesce(m.Product.brand, "")) == (obj.brand or "").lower(),
                    func.lower(m.Product.product_id) == obj.product_id.lower(),
                    not_this(m.Product, obj),
                )
            )
        )
        if taken:
            raise invalid("productID", "Product ID has already been taken for this brand")
    if not creating and "brand" in values:
        from landmark.cmdb.cis import rekey_serials

        await rekey_serials(session, obj)


RULES: dict[str, Rule] = {
    "product_categories": _product_category_rules,
    "teams": _team_rules,
    "people": _person_rules,
    "services": _service_rules,
    "products": _product_rules,
}
