"""Identity business rules: accounts, users, memberships, technical users and credentials.

Every function changes state inside the caller's transaction and records the event with it; the
caller commits. Faces (native, LeanIX MTM, Upsolver) call these and render the result.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core import clock
from landmark.core.db import get_scoped, scoped
from landmark.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from landmark.core.events import SYSTEM, Actor, Event, record
from landmark.identity.authn import Principal, mark_identity_changed
from landmark.identity.models import Account, Credential, Membership, User
from landmark.identity.pepper import current_pepper
from landmark.identity.permissions import Permission, Role, parse_permissions
from landmark.identity.secrets import hash_password, keyed_hash, new_key_id, new_token
from landmark.settings import Settings

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Issued:
    """A credential and its secret, which is shown this once."""

    credential: Credential
    secret: str


# --- validation helpers ------------------------------------------------------------------------


def _require_text(field: str, value: Any, max_len: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("Validation Failed", [(field, "is required")])
    if len(value) > max_len:
        raise ValidationFailed("Validation Failed", [(field, f"is too long (maximum {max_len})")])
    return value.strip()


def _role(value: Any, field: str = "role") -> str:
    try:
        return Role(str(value).lower()).value
    except ValueError:
        raise ValidationFailed(
            "Validation Failed", [(field, f"must be one of {', '.join(r.value for r in Role)}")]
        ) from None


def _email(value: Any) -> str:
    email = _require_text("email", value, 320).lower()
    if not EMAIL.match(email):
        raise ValidationFailed("Validation Failed", [("email", "is not a valid email address")])
    return email


def _password(value: Any) -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD:
        raise ValidationFailed(
            "Validation Failed", [("password", f"must have at least {MIN_PASSWORD} characters")]
        )
    return value


def _future(field: str, value: datetime | None, max_days: int) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationFailed("Validation Failed", [(field, "must carry a UTC offset")])
    now = clock.now()
    if value <= now:
        raise ValidationFailed("Validation Failed", [(field, "must be in the future")])
    if value > now + timedelta(days=max_days):
        raise ValidationFailed("Validation Failed", [(field, f"must be within {max_days} days")])
    return value


def _within_owner(principal: Principal, wanted: list[str] | None, field: str) -> list[str] | None:
    """A credential never has more rights than its owner (here: the caller's own rights)."""
    if wanted is None:
        return None
    wanted = parse_permissions(wanted, field)
    beyond = sorted(set(wanted) - principal.permissions)
    if beyond:
        raise Forbidden(f"{field} exceed your own permissions: {', '.join(beyond)}")
    return wanted


# --- accounts ----------------------------------------------------------------------------------


async def create_account(session: AsyncSession, slug: str, name: str) -> Account:
    slug = _require_text("id", slug, 64).lower()
    if not SLUG.match(slug):
        raise ValidationFailed(
            "Validation Failed", [("id", "must be 2-63 lowercase letters, digits or dashes")]
        )
    if await session.get(Account, slug) is not None:
        raise Conflict(f"Account {slug!r} already exists", [("id", "has already been taken")])
    account = Account(id=slug, name=_require_text("name", name))
    session.add(account)
    await session.flush()
    await record(session, slug, "account.created", "account", slug, SYSTEM, {"name": account.name})
    return account


async def update_account(
    session: AsyncSession, principal: Principal, changes: dict[str, Any]
) -> Account:
    principal.require(Permission.ACCOUNT)
    account = await session.get_one(Account, principal.account_id)
    diff: dict[str, list[Any]] = {}
    if "name" in changes:
        diff["name"] = [account.name, _require_text("name", changes["name"])]
        account.name = diff["name"][1]
    for field in ("rate_limit", "rate_limit_window"):
        if field in changes:
            value = changes[field]
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValidationFailed("Validation Failed", [(field, "must be a positive integer")])
            diff[field] = [getattr(account, field), value]
            setattr(account, field, value)
    mark_identity_changed(session)
    await record(
        session, account.id, "account.updated", "account", account.id, principal.actor, diff
    )
    return account


# --- users -------------------------------------------------------------------------------------


async def create_user(
    session: AsyncSession,
    account_id: str,
    actor: Actor,
    *,
    email: Any,
    name: Any,
    password: Any,
    role: Any = Role.MEMBER.value,
    permissions: list[str] | None = None,
) -> tuple[User, Membership]:
    email = _email(email)
    role = _role(role)
    grants = parse_permissions(permissions or [], "permissions")
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ValidationFailed("Validation Failed", [("email", "has already been taken")])
    user = User(
        email=email,
        name=_require_text("name", name),
        password_hash=hash_password(_password(password)) if password is not None else None,
    )
    session.add(user)
    await session.flush()
    membership = Membership(account_id=account_id, user_id=user.id, role=role, permissions=grants)
    session.add(membership)
    mark_identity_changed(session)
    await record(
        session, account_id, "user.created", "user", user.id, actor, {"email": email, "role": role}
    )
    await record(
        session,
        account_id,
        "membership.created",
        "user",
        user.id,
        actor,
        {"role": role, "permissions": grants},
    )
    return user, membership


async def invite_user(
    session: AsyncSession, principal: Principal, email: Any, role: Any, name: Any = None
) -> tuple[User, Membership]:
    """Add a person to the account: an existing user gets a membership, a new one is created."""
    principal.require(Permission.USERS)
    email, role = _email(email), _role(role)
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        return await create_user(
            session,
            principal.account_id,
            principal.actor,
            email=email,
            name=name or email.split("@")[0],
            password=None,
            role=role,
        )
    membership = await session.get(Membership, (principal.account_id, user.id))
    if membership is not None:
        raise ValidationFailed(
            "Validation Failed", [("email", "is already a member of this workspace")]
        )
    membership = Membership(
        account_id=principal.account_id, user_id=user.id, role=role, permissions=[]
    )
    session.add(membership)
    mark_identity_changed(session)  # a cached sign-in of this user may now need an account named
    await record(
        session,
        principal.account_id,
        "membership.created",
        "user",
        user.id,
        principal.actor,
        {"role": role},
    )
    return user, membership


async def list_members(
    session: AsyncSession,
    principal: Principal,
    kind: str = "person",
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[tuple[User, Membership]], int]:
    query = (
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == principal.account_id, User.kind == kind)
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = (await session.execute(query.order_by(User.id).offset(offset).limit(limit))).all()
    return [(u, m) for u, m in rows], int(total or 0)


async def get_member(
    session: AsyncSession, principal: Principal, user_id: int, kind: str = "person"
) -> tuple[User, Membership]:
    row = (
        await session.execute(
            select(User, Membership)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.account_id == principal.account_id, User.id == user_id, User.kind == kind
            )
        )
    ).first()
    if row is None:
        raise NotFound("User not found")
    return row[0], row[1]


async def update_member(
    session: AsyncSession, principal: Principal, user_id: int, changes: dict[str, Any]
) -> tuple[User, Membership]:
    """Change a member: name, password (self or admin), role and grants (admin), status (admin).

    Name and password belong to the person, who may belong to other accounts too: an admin may
    change them only for a person of this account alone.
    """
    user, membership = await get_member(session, principal, user_id)
    is_self = user.id == principal.user_id
    if not is_self or set(changes) - {"name", "password"}:
        principal.require(Permission.USERS)
    if not is_self and {"name", "password"} & set(changes):
        await _require_sole_account(session, principal.account_id, user)
    diff: dict[str, list[Any]] = {}
    if "name" in changes:
        diff["name"] = [user.name, _require_text("name", changes["name"])]
        user.name = diff["name"][1]
    if "password" in changes:
        user.password_hash = hash_password(_password(changes["password"]))
        diff["password"] = ["[FILTERED]", "[FILTERED]"]
    if "role" in changes:
        diff["role"] = [membership.role, _role(changes["role"])]
        membership.role = diff["role"][1]
    if "permissions" in changes:
        grants = parse_permissions(list(changes["permissions"] or []), "permissions")
        diff["permissions"] = [membership.permissions, grants]
        membership.permissions = grants
    archive = changes.get("status") == "archived" and membership.status != "archived"
    if "status" in changes:
        if changes["status"] not in ("active", "archived"):
            raise ValidationFailed("Validation Failed", [("status", "must be active or archived")])
        if archive and is_self:
            raise ValidationFailed("Validation Failed", [("status", "you cannot archive yourself")])
        diff["status"] = [membership.status, changes["status"]]
        membership.status = changes["status"]
    mark_identity_changed(session)
    await record(
        session, principal.account_id, "user.updated", "user", user.id, principal.actor, diff
    )
    if archive:
        await archive_member(session, principal, user)
    return user, membership


async def _require_sole_account(session: AsyncSession, account_id: str, user: User) -> None:
    elsewhere = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.user_id == user.id, Membership.account_id != account_id)
    )
    if elsewhere:
        raise Forbidden(
            "This person also belongs to other accounts: only they may change name or password"
        )


async def archive_member(session: AsyncSession, principal: Principal, user: User) -> None:
    """An archived user's credentials in the account die at once, for good."""
    revoked = await _revoke_all(session, principal.account_id, user.id)
    await record(
        session,
        principal.account_id,
        "user.archived",
        "user",
        user.id,
        principal.actor,
        {"credentials_revoked": revoked},
    )


async def _revoke_all(session: AsyncSession, account_id: str, user_id: int) -> int:
    now = clock.now()
    credentials = (
        await session.scalars(
            scoped(Credential, account_id).where(
                Credential.user_id == user_id, Credential.revoked_at.is_(None)
            )
        )
    ).all()
    for credential in credentials:
        credential.revoked_at = now
    mark_identity_changed(session)
    return len(credentials)


# --- tokens (personal, Upsolver, technical users) --------------------------------------------


async def issue_token(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    *,
    kind: str,
    name: Any,
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
    description: str | None = None,
    user_id: int | None = None,
) -> Issued:
    """A new token for the caller (or, for technical users, for `user_id`), shown once."""
    name = _require_text("name", name)
    expires_at = _future("expires_at", expires_at, settings.token_max_days)
    if expires_at is None and kind in ("personal", "upsolver"):
        expires_at = clock.now() + timedelta(days=settings.token_idle_days)
    key_id = new_key_id()
    token = new_token(kind, key_id)
    credential = Credential(
        account_id=principal.account_id,
        user_id=user_id or principal.user_id,
        kind=kind,
        name=name,
        description=description,
        key_id=key_id,
        secret_hash=_hash(token),
        secret_last3=token[-3:],
        scopes=_within_owner(principal, scopes, "scopes"),
        expires_at=expires_at,
        created_by=principal.user_id,
    )
    session.add(credential)
    await session.flush()
    await record(
        session,
        principal.account_id,
        "credential.created",
        "credential",
        credential.id,
        principal.actor,
        {"kind": kind, "name": name, "user_id": credential.user_id},
    )
    return Issued(credential, token)


def _hash(secret: str) -> str:
    return keyed_hash(current_pepper(), secret)


async def list_own_tokens(
    session: AsyncSession, principal: Principal, kinds: tuple[str, ...]
) -> list[Credential]:
    """A user's own tokens: nobody else sees them, not even an admin."""
    return list(
        (
            await session.scalars(
                scoped(Credential, principal.account_id)
                .where(
                    Credential.user_id == principal.user_id,
                    Credential.kind.in_(kinds),
                    Credential.revoked_at.is_(None),
                )
                .order_by(Credential.created_at)
            )
        ).all()
    )


async def get_own_token(
    session: AsyncSession, principal: Principal, token_id: Any, kinds: tuple[str, ...]
) -> Credential:
    credential = await _get_credential(session, principal.account_id, token_id)
    if credential.user_id != principal.user_id or credential.kind not in kinds:
        raise NotFound("Token not found")
    return credential


async def revoke(session: AsyncSession, principal: Principal, credential: Credential) -> None:
    credential.revoked_at = clock.now()
    mark_identity_changed(session)
    await record(
        session,
        principal.account_id,
        "credential.revoked",
        "credential",
        credential.id,
        principal.actor,
        {"kind": credential.kind, "name": credential.name},
    )


async def _get_credential(session: AsyncSession, account_id: str, ident: Any) -> Credential:
    try:
        ident = uuid.UUID(str(ident))
    except ValueError:
        raise NotFound("Not found") from None
    credential = await get_scoped(session, Credential, account_id, ident)
    if credential.revoked_at is not None:
        raise NotFound("Not found")
    return credential


# --- API keys (client credentials) --------------------------------------------------------------


async def create_api_key(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    name: Any,
    privileges: list[str] | None,
) -> Issued:
    principal.require(Permission.API_KEYS)
    key_id = new_key_id()
    secret = new_token("api_key", key_id)
    credential = Credential(
        account_id=principal.account_id,
        user_id=principal.user_id,
        kind="api_key",
        name=_require_text("name", name),
        key_id=key_id,
        secret_hash=_hash(secret),
        secret_last3=secret[-3:],
        scopes=_within_owner(
            principal,
            privileges if privileges is not None else sorted(principal.permissions),
            "privileges",
        ),
        expires_at=clock.now() + timedelta(days=settings.api_key_secret_days),
        created_by=principal.user_id,
    )
    session.add(credential)
    await session.flush()
    await record(
        session,
        principal.account_id,
        "api_key.created",
        "credential",
        credential.id,
        principal.actor,
        {"name": credential.name, "privileges": credential.scopes},
    )
    return Issued(credential, secret)


async def list_api_keys(session: AsyncSession, principal: Principal) -> list[Credential]:
    principal.require(Permission.API_KEYS)
    return list(
        (
            await session.scalars(
                scoped(Credential, principal.account_id)
                .where(Credential.kind == "api_key", Credential.revoked_at.is_(None))
                .order_by(Credential.created_at)
            )
        ).all()
    )


async def get_api_key(session: AsyncSession, principal: Principal, key_id: Any) -> Credential:
    principal.require(Permission.API_KEYS)
    credential = await _get_credential(session, principal.account_id, key_id)
    if credential.kind != "api_key":
        raise NotFound("API key not found")
    return credential


async def update_api_key(
    session: AsyncSession, principal: Principal, key_id: Any, changes: dict[str, Any]
) -> Credential:
    credential = await get_api_key(session, principal, key_id)
    diff: dict[str, list[Any]] = {}
    if "name" in changes:
        diff["name"] = [credential.name, _require_text("name", changes["name"])]
        credential.name = diff["name"][1]
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise ValidationFailed("Validation Failed", [("enabled", "must be true or false")])
        diff["enabled"] = [credential.enabled, changes["enabled"]]
        credential.enabled = changes["enabled"]
    if "privileges" in changes:
        diff["privileges"] = [
            credential.scopes,
            _within_owner(principal, changes["privileges"], "privileges"),
        ]
        credential.scopes = diff["privileges"][1]
    mark_identity_changed(session)
    await record(
        session,
        principal.account_id,
        "api_key.updated",
        "credential",
        credential.id,
        principal.actor,
        diff,
    )
    return credential


async def regenerate_api_key(
    session: AsyncSession, settings: Settings, principal: Principal, key_id: Any
) -> Issued:
    """A new secret; the old one stops working at once, and an expired key works again."""
    credential = await get_api_key(session, principal, key_id)
    secret = new_token("api_key", credential.key_id)
    credential.secret_hash = _hash(secret)
    credential.secret_last3 = secret[-3:]
    credential.issued_at = clock.now()
    credential.expires_at = credential.issued_at + timedelta(days=settings.api_key_secret_days)
    mark_identity_changed(session)
    await record(
        session,
        principal.account_id,
        "api_key.regenerated",
        "credential",
        credential.id,
        principal.actor,
    )
    return Issued(credential, secret)


async def delete_api_key(session: AsyncSession, principal: Principal, key_id: Any) -> None:
    credential = await get_api_key(session, principal, key_id)
    credential.revoked_at = clock.now()
    mark_identity_changed(session)
    await record(
        session,
        principal.account_id,
        "api_key.deleted",
        "credential",
        credential.id,
        principal.actor,
    )


# --- technical users ----------------------------------------------------------------------------


async def create_technical_user(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    *,
    name: Any,
    role: Any,
    description: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[User, Membership, Issued]:
    principal.require(Permission.USERS)
    name, role = _require_text("userName", name), _role(role)
    expires_at = _future("expiry", expires_at, 3650)
    user = User(kind="technical", name=name, description=description, expires_at=expires_at)
    session.add(user)
    await session.flush()
    membership = Membership(
        account_id=principal.account_id, user_id=user.id, role=role, permissions=[]
    )
    session.add(membership)
    mark_identity_changed(session)  # a cached sign-in of this user may now need an account named
    await record(
        session,
        principal.account_id,
        "technical_user.created",
        "technical_user",
        user.id,
        principal.actor,
        {"name": name, "role": role},
    )
    issued = await issue_token(
        session,
        settings,
        _as_owner(principal, role),
        kind="technical",
        name=name,
        expires_at=expires_at,
        user_id=user.id,
    )
    return user, membership, issued


def _as_owner(principal: Principal, role: str) -> Principal:
    """The admin acting, bounded by the technical user's role for the token it is given."""
    from dataclasses import replace

    from landmark.identity.permissions import effective_permissions

    return replace(principal, permissions=principal.permissions & effective_permissions(role, []))


async def technical_token(
    session: AsyncSession, principal: Principal, user: User
) -> Credential | None:
    return await session.scalar(
        scoped(Credential, principal.account_id).where(
            Credential.user_id == user.id,
            Credential.kind == "technical",
            Credential.revoked_at.is_(None),
        )
    )


async def replace_technical_token(
    session: AsyncSession, settings: Settings, principal: Principal, user_id: int
) -> Issued:
    principal.require(Permission.USERS)
    user, membership = await get_member(session, principal, user_id, kind="technical")
    if membership.status != "active":
        raise NotFound("Technical user not found")
    await _revoke_all(session, principal.account_id, user.id)
    await record(
        session,
        principal.account_id,
        "technical_user.token_replaced",
        "technical_user",
        user.id,
        principal.actor,
    )
    return await issue_token(
        session,
        settings,
        _as_owner(principal, membership.role),
        kind="technical",
        name=user.name,
        expires_at=user.expires_at if user.expires_at and user.expires_at > clock.now() else None,
        user_id=user.id,
    )


async def delete_technical_user(session: AsyncSession, principal: Principal, user_id: int) -> None:
    principal.require(Permission.USERS)
    user, membership = await get_member(session, principal, user_id, kind="technical")
    membership.status = "archived"
    await _revoke_all(session, principal.account_id, user.id)
    await record(
        session,
        principal.account_id,
        "technical_user.deleted",
        "technical_user",
        user.id,
        principal.actor,
    )


# --- audit trail --------------------------------------------------------------------------------


async def audit_trail(
    session: AsyncSession,
    principal: Principal,
    *,
    after: int = 0,
    limit: int = 100,
    subject_type: str | None = None,
    subject_id: str | None = None,
) -> list[Event]:
    principal.require(Permission.AUDIT)
    query = scoped(Event, principal.account_id).where(Event.seq > after)
    if subject_type:
        query = query.where(Event.subject_type == subject_type)
    if subject_id:
        query = query.where(Event.subject_id == subject_id)
    return list((await session.scalars(query.order_by(Event.seq).limit(limit))).all())


# --- bootstrap ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bootstrapped:
    account: Account
    admin: User
    token: Issued


async def bootstrap_account(
    session: AsyncSession,
    settings: Settings,
    *,
    slug: str,
    name: str,
    admin_email: str,
    admin_password: str,
    admin_name: str = "",
    role: str = Role.ADMIN.value,
    token_days: int = 365,
) -> Bootstrapped:
    """A new account, its first user and that user's personal API token (`landmark init`)."""
    await create_account(session, slug, name)
    return await add_person(
        session,
        settings,
        slug,
        email=admin_email,
        password=admin_password,
        name=admin_name or admin_email.split("@")[0],
        role=role,
        token_days=token_days,
    )


async def add_person(
    session: AsyncSession,
    settings: Settings,
    account_id: str,
    *,
    email: str,
    password: str,
    name: str,
    role: str,
    token_days: int = 365,
) -> Bootstrapped:
    """A person with a password and a personal API token, created by the system (CLI, demo)."""
    from landmark.identity.authn import member_principal

    user, _ = await create_user(
        session, account_id, SYSTEM, email=email, name=name, password=password, role=role
    )
    principal = await member_principal(session, settings, user, account_id)
    issued = await issue_token(
        session,
        settings,
        principal,
        kind="personal",
        name="landmark init",
        expires_at=clock.now() + timedelta(days=token_days),
    )
    account = await session.get_one(Account, account_id)
    return Bootstrapped(account, user, issued)
