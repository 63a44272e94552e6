"""Who is calling: every way of signing in resolves to one Principal, bound to one account.

Accepted: `Authorization: Bearer <JWT | lmk_ token>`, a raw `Authorization: <token>` (Upsolver),
and HTTP Basic with email and password (which must carry `X-Requested-By` when CSRF protection is
on). A checked credential is trusted by this process for `auth_cache_seconds`, so the hot path
costs no database read and no argon2 hash; any identity change committed in this process drops
the cache at once (other processes notice within that time).
"""

import asyncio
import base64
import binascii
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from landmark.core import clock
from landmark.core.errors import BadRequest, Forbidden, Unauthorized
from landmark.core.events import Actor, record
from landmark.identity.keys import KeyRing, challenge
from landmark.identity.models import Account, Credential, Membership, User
from landmark.identity.permissions import LEANIX_ROLE, Permission, Role, effective_permissions
from landmark.identity.secrets import keyed_hash, parse_token, same_hash, verify_password
from landmark.settings import Settings

ACCOUNT_HEADERS = ("x-xurrent-account", "x-4me-account")
BASIC_CHALLENGE = 'Basic realm="landmark"'
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most once a minute
IDLE_KINDS = ("personal", "upsolver")  # tokens that expire when left unused
TOKEN_KINDS = (
    "personal",
    "technical",
    "upsolver",
)  # bearer tokens; API keys only sign in at /oauth/token


@dataclass(frozen=True)
class Principal:
    user_id: int
    user_uuid: uuid.UUID
    user_name: str
    user_email: str | None
    user_kind: str
    account_id: str
    account_uuid: uuid.UUID
    account_name: str
    role: str
    permissions: frozenset[str]
    credential_id: str | None  # None when signed in with a password
    credential_kind: str | None
    rate_limit: int
    rate_window: int
    valid_until: datetime | None

    def can(self, permission: Permission) -> bool:
        return permission.value in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise Forbidden(f"This requires the {permission.value!r} permission")

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.credential_id)

    @property
    def rate_subject(self) -> str:
        return self.credential_id or f"user:{self.user_id}:{self.account_id}"

    def leanix_claims(self, instance_url: str) -> dict[str, Any]:
        """The `principal` and `instanceUrl` claims LeanIX clients read from an MTM token."""
        role = LEANIX_ROLE[Role(self.role)]
        return {
            "instanceUrl": instance_url,
            "principal": {
                "id": str(self.user_uuid),
                "username": self.user_email or self.user_name,
                "role": "TECHNICAL_USER" if self.user_kind == "technical" else "ACCOUNTUSER",
                "status": "ACTIVE",
                "account": {"id": str(self.account_uuid), "name": self.account_name},
                "permission": {
                    "id": f"{self.account_uuid}:{self.user_uuid}",
                    "workspaceId": str(self.account_uuid),
                    "workspaceName": self.account_id,
                    "role": role,
                    "status": "ACTIVE",
                },
            },
        }


# --- the process-wide cache of checked credentials --------------------------------------------

_generation = 0


def invalidate_cache() -> None:
    global _generation
    _generation += 1


def mark_identity_changed(session: AsyncSession) -> None:
    """Drop every cached credential check when this session commits."""
    session.sync_session.info["identity_changed"] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop("identity_changed", False):
        invalidate_cache()


@dataclass
class _Entry:
    principal: Principal
    kind: str  # the credential's kind; "password" for a Basic sign-in
    secret_hash: str
    problem: str  # why the credential is not in force now, or ""
    last_used_at: datetime | None
    generation: int
    fetched: float


# --- authentication --------------------------------------------------------------------------


class Authenticator:
    def __init__(self, settings: Settings, keyring: KeyRing, pepper: bytes) -> None:
        self.settings = settings
        self.keyring = keyring
        self.pepper = pepper
        self._cache: dict[Any, _Entry] = {}
        # When a cached check runs out, one request per credential re-checks it while the others
        # wait for its result, instead of every concurrent request reading the database (or
        # hashing a password) at once. A fixed pool keeps the locks bounded.
        self._locks = [asyncio.Lock() for _ in range(64)]

    async def _cached_or(self, key: Any, load: Callable[[], Awaitable[_Entry]]) -> _Entry:
        """The cached check under `key`, or `load()` run by one caller while the others wait."""
        entry = self._cached(key)
        if entry is None:
            async with self._locks[hash(key) % len(self._locks)]:
                entry = self._cached(key) or await load()
        return entry

    async def authenticate(self, headers: Any, session: AsyncSession) -> Principal:
        authorization = headers.get("authorization")
        if not authorization:
            raise Unauthorized("Authentication required")
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            if self.settings.csrf_protection and "x-requested-by" not in headers:
                raise BadRequest(
                    "Requests signed in with HTTP Basic must carry an X-Requested-By header "
                    "(any value) as CSRF protection"
                )
            email, password = _decode_basic(value)
            principal = await self.password_principal(
                session, email, password, account_hint(headers)
            )
        elif scheme.lower() == "bearer" or not value:
            token = value if scheme.lower() == "bearer" else scheme  # raw Upsolver-style token
            principal = await self.token_principal(session, token)
        else:
            raise Unauthorized("Unsupported authorization scheme", challenge("invalid_request"))
        hint = account_hint(headers)
        if hint and hint != principal.account_id:
            raise Forbidden(f"This credential is bound to account {principal.account_id!r}")
        return principal

    async def token_principal(self, session: AsyncSession, token: str) -> Principal:
        """The principal of a bearer value: our JWT access token or an `lmk_` token."""
        if token.count(".") == 2:
            return await self._jwt_principal(session, token)
        parsed = parse_token(token)
        if parsed is None or parsed.kind == "api_key":
            raise Unauthorized("The access token is malformed", challenge("invalid_token"))
        return await self.secret_principal(session, parsed.key_id, token)

    async def secret_principal(
        self, session: AsyncSession, key_id: str, secret: str, kinds: tuple[str, ...] = TOKEN_KINDS
    ) -> Principal:
        """Check a secret against the credential with that key id (tokens or client secrets).

        The secret is compared before anything else is said or written about the credential, so
        that a caller without it learns nothing and marks nothing as used.
        """
        entry = await self._credential_entry(session, key_id)
        digest = keyed_hash(self.pepper, secret)
        if entry.kind not in kinds or not same_hash(entry.secret_hash, digest):
            raise Unauthorized("The access token is invalid", challenge("invalid_token"))
        return await self._usable(session, entry, key_id)

    async def _jwt_principal(self, session: AsyncSession, token: str) -> Principal:
        claims = await self.keyring.verify(session, token)
        key_id = str(claims.get("cid", ""))
        return await self._usable(session, await self._credential_entry(session, key_id), key_id)

    async def _credential_entry(self, session: AsyncSession, key_id: str) -> _Entry:
        return await self._cached_or(
            ("credential", key_id), lambda: self._load_credential(session, key_id)
        )

    async def _usable(self, session: AsyncSession, entry: _Entry, key_id: str) -> Principal:
        """The principal of a credential whose secret was proven, if it is in force now."""
        if entry.problem:
            raise Unauthorized(
                f"The credential is {entry.problem}", challenge("invalid_token", entry.problem)
            )
        if entry.principal.valid_until is not None and entry.principal.valid_until <= clock.now():
            self._cache.pop(("credential", key_id), None)
            raise Unauthorized("The access token expired", challenge("invalid_token", "expired"))
        await self._touch(session, entry, key_id)
        return entry.principal

    async def _load_credential(self, session: AsyncSession, key_id: str) -> _Entry:
        generation = _generation
        row = (
            await session.execute(
                _principal_query()
                .add_columns(Credential)
                .where(Credential.key_id == key_id)
                .join(
                    Credential,
                    (Credential.account_id == Membership.account_id)
                    & (Credential.user_id == User.id),
                )
            )
        ).first()
        if row is None:
            raise Unauthorized("The access token is invalid", challenge("invalid_token"))
        user, membership, account, credential = row
        now = clock.now()
        problem = _credential_problem(credential, now) or _membership_problem(
            user, membership, account, now
        )
        bounds = [credential.expires_at, user.expires_at]
        if credential.kind in IDLE_KINDS:
            bounds.append(_idle_deadline(credential, self.settings.token_idle_days))
        principal = build_principal(
            self.settings, user, membership, account, credential, [b for b in bounds if b]
        )
        entry = _Entry(
            principal,
            credential.kind,
            credential.secret_hash,
            problem,
            credential.last_used_at,
            generation,
            time.monotonic(),
        )
        self._cache[("credential", key_id)] = entry
        return entry

    async def _touch(self, session: AsyncSession, entry: _Entry, key_id: str) -> None:
        now = clock.now()
        if entry.last_used_at and now - entry.last_used_at < LAST_USED_RESOLUTION:
            return
        entry.last_used_at = now
        await session.execute(
            update(Credential).where(Credential.key_id == key_id).values(last_used_at=now)
        )
        await session.commit()

    async def password_principal(
        self, session: AsyncSession, email: str, password: str, account_hint: str | None
    ) -> Principal:
        """Sign in with email and password, in the account named by the hint or the only one."""
        email = email.strip().lower()
        key = ("password", email, keyed_hash(self.pepper, password), account_hint)
        entry = await self._cached_or(
            key, lambda: self._sign_in(session, key, email, password, account_hint)
        )
        return entry.principal

    async def _sign_in(
        self, session: AsyncSession, key: Any, email: str, password: str, account_hint: str | None
    ) -> _Entry:
        generation = _generation
        user = await session.scalar(select(User).where(User.email == email, User.kind == "person"))
        now = clock.now()
        if user is not None and user.locked_until and user.locked_until > now:
            wait = int((user.locked_until - now).total_seconds()) + 1
            raise Unauthorized(
                f"Too many failed sign-ins: try again in {wait} seconds", BASIC_CHALLENGE
            )
        stored = user.password_hash if user is not None else None  # None still costs a hash
        if not await asyncio.to_thread(verify_password, stored, password) or user is None:
            if user is not None:
                await self._record_failed_sign_in(session, user)
            raise Unauthorized("Invalid email or password", BASIC_CHALLENGE)
        if user.failed_sign_ins:
            user.failed_sign_ins, user.locked_until = 0, None
            await session.commit()
        principal = await member_principal(session, self.settings, user, account_hint)
        entry = _Entry(principal, "password", "", "", None, generation, time.monotonic())
        self._cache[key] = entry
        return entry

    async def _record_failed_sign_in(self, session: AsyncSession, user: User) -> None:
        if user.locked_until is not None:  # a lock that ran out: count afresh
            user.failed_sign_ins, user.locked_until = 0, None
        user.failed_sign_ins += 1
        if user.failed_sign_ins >= self.settings.lockout_attempts:
            user.locked_until = clock.now() + timedelta(seconds=self.settings.lockout_seconds)
        accounts = (
            await session.scalars(
                select(Membership.account_id).where(Membership.user_id == user.id)
            )
        ).all()
        for account_id in accounts:
            await record(
                session,
                account_id,
                "user.sign_in_failed",
                "user",
                user.id,
                Actor(user.id),
                {"failed_sign_ins": user.failed_sign_ins, "locked": user.locked_until is not None},
            )
        mark_identity_changed(session)  # a cached sign-in of this user must not outlive a lock
        await session.commit()

    def _cached(self, key: Any) -> _Entry | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if (
            entry.generation != _generation
            or time.monotonic() - entry.fetched > self.settings.auth_cache_seconds
        ):
            del self._cache[key]
            return None
        return entry


def build_principal(
    settings: Settings,
    user: User,
    membership: Membership,
    account: Account,
    credential: Credential | None,
    bounds: list[datetime],
) -> Principal:
    return Principal(
        user_id=user.id,
        user_uuid=user.uuid,
        user_name=user.name,
        user_email=user.email,
        user_kind=user.kind,
        account_id=account.id,
        account_uuid=account.uuid,
        account_name=account.name,
        role=membership.role,
        permissions=effective_permissions(
            membership.role, membership.permissions, credential.scopes if credential else None
        ),
        credential_id=credential.key_id if credential else None,
        credential_kind=credential.kind if credential else None,
        rate_limit=account.rate_limit or settings.rate_limit,
        rate_window=account.rate_limit_window or settings.rate_limit_window,
        valid_until=min(bounds) if bounds else None,
    )


async def member_principal(
    session: AsyncSession, settings: Settings, user: User, account_hint: str | None
) -> Principal:
    """The principal of a user signed in without a credential, in the hinted or only account."""
    rows = (await session.execute(_principal_query().where(User.id == user.id))).all()
    now = clock.now()
    usable = [r for r in rows if not _membership_problem(r[0], r[1], r[2], now)]
    if account_hint:
        usable = [r for r in usable if r[2].id == account_hint]
        if not usable:
            raise Forbidden(f"You have no access to account {account_hint!r}")
    if not usable:
        raise Unauthorized("This user has no active account", BASIC_CHALLENGE)
    if len(usable) > 1:
        raise BadRequest(
            "This user belongs to several accounts: name one with the X-Xurrent-Account header"
        )
    _, membership, account = usable[0]
    return build_principal(settings, user, membership, account, None, [])


def _principal_query() -> Select[User, Membership, Account]:
    return (
        select(User, Membership, Account)
        .join(Membership, Membership.user_id == User.id)
        .join(Account, Account.id == Membership.account_id)
    )


def _credential_problem(credential: Credential, now: datetime) -> str:
    if credential.revoked_at is not None:
        return "revoked"
    if not credential.enabled:
        return "disabled"
    if credential.expires_at is not None and credential.expires_at <= now:
        return "expired"
    return ""


def _membership_problem(user: User, membership: Membership, account: Account, now: datetime) -> str:
    if membership.status != "active":
        return "of an archived user"
    if user.expires_at is not None and user.expires_at <= now:
        return "of an expired technical user"
    if account.status != "active":
        return "of a disabled account"
    return ""


def _idle_deadline(credential: Credential, idle_days: int) -> datetime:
    return (credential.last_used_at or credential.issued_at) + timedelta(days=idle_days)


def account_hint(headers: Any) -> str | None:
    for name in ACCOUNT_HEADERS:
        value = headers.get(name)
        if value:
            return str(value).strip().lower()
    return None


def _decode_basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("Malformed Basic credentials", BASIC_CHALLENGE) from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthorized("Malformed Basic credentials", BASIC_CHALLENGE)
    return user, password
