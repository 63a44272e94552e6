"""Xurrent webhook policies: a key pair that signs the deliveries of the webhooks linked to it.

Landmark generates the pair when the policy is made (`jwt_alg` picks RSA or an elliptic curve);
the public key is shown once, in the answer to the create, and the private key is kept in the
row as unencrypted PKCS#8 PEM, as identity/keys.py keeps the JWT signing keys: whoever can read
the database can read it. A signed delivery is `{"jwt": "<JWS>"}` (reference §1.16), signed at
send time so that `iat` is fresh on every retry.

A disabled policy holds its webhooks: they count as inactive (no event is queued for them and
queued deliveries wait), so nothing is ever sent unsigned to a receiver that expects a JWT.
A policy cannot be deleted while a webhook uses it.
"""

import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from sqlalchemy import ForeignKey, Index, String, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from landmark.cmdb.service import invalid
from landmark.core import clock
from landmark.core.db import Base
from landmark.core.errors import NotFound
from landmark.core.events import record
from landmark.identity.authn import Principal
from landmark.webhooks.models import WebhookSubscription

SUBJECT = "webhook_policy"
ALGORITHMS = ("es256", "es384", "es512", "rs256", "rs384", "rs512")
CURVES: dict[str, ec.EllipticCurve] = {
    "es256": ec.SECP256R1(),
    "es384": ec.SECP384R1(),
    "es512": ec.SECP521R1(),
}
RSA_BITS = {"rs256": 2048, "rs384": 3072, "rs512": 3072}
POLICY_ID = "webhook_policy_id"  # the key of a webhook's config that links it to a policy
MAX_EXPIRES_IN = 30 * 24 * 3600  # seconds


class WebhookPolicy(Base):
    """A signing policy of an account (Xurrent `webhook_policies`)."""

    __tablename__ = "webhook_policies"
    __table_args__ = (Index(None, "account_id", "name"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    jwt_alg: Mapped[str] = mapped_column(String(8))
    jwt_audience: Mapped[str | None] = mapped_column(String(255))
    jwt_claim_expires_in: Mapped[int | None]  # seconds; no `exp` claim when empty
    private_pem: Mapped[str] = mapped_column(Text)  # never shown
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


def generate(alg: str) -> tuple[str, str]:
    """A new key pair for `alg`: (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if alg in CURVES:
        private = ec.generate_private_key(CURVES[alg])
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[alg])
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@lru_cache(maxsize=256)  # parsing an RSA key costs milliseconds; a policy signs many deliveries
def _private_key(pem: str) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def sign(policy: WebhookPolicy, data: Any, issuer: str, subject: str) -> str:
    """The JWS of a delivery: claims `data`, `iss`, `aud`, `sub`, `jti`, `iat`, `nbf` (and `exp`
    when the policy sets `jwt_claim_expires_in`), header `typ: JWT`."""
    now = int(clock.timestamp())
    claims: dict[str, Any] = {
        "data": data,
        "iss": issuer,
        "sub": subject,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
    }
    if policy.jwt_audience:
        claims["aud"] = policy.jwt_audience
    if policy.jwt_claim_expires_in:
        claims["exp"] = now + policy.jwt_claim_expires_in
    key: Any = _private_key(policy.private_pem)
    return jwt.encode(claims, key, algorithm=policy.jwt_alg.upper(), headers={"typ": "JWT"})


# ---- the rules the face calls -----------------------------------------------------------------


def linked(policy_id: int) -> Any:
    """The condition selecting the webhooks linked to a policy."""
    return WebhookSubscription.config[POLICY_ID].as_integer() == policy_id


def check(values: dict[str, Any]) -> None:
    """The rules beyond the field types: a lifetime within bounds; `disabled` is a flag."""
    expires_in = values.get("jwt_claim_expires_in")
    if expires_in is not None and not 0 < expires_in <= MAX_EXPIRES_IN:
        raise invalid("jwt_claim_expires_in", f"must be from 1 to {MAX_EXPIRES_IN} seconds")
    if "disabled" in values:
        values["disabled"] = bool(values["disabled"])


def summary(policy: WebhookPolicy) -> dict[str, Any]:
    """What an event about a policy records (no key)."""
    return {
        "name": policy.name,
        "disabled": policy.disabled,
        "jwt_alg": policy.jwt_alg,
        "jwt_audience": policy.jwt_audience,
        "jwt_claim_expires_in": policy.jwt_claim_expires_in,
    }


async def create(
    session: AsyncSession, who: Principal, values: dict[str, Any]
) -> tuple[WebhookPolicy, str]:
    """Store a new policy of `who`'s account with a fresh key pair; returns it with the public
    key PEM (the only time that is shown). The caller commits."""
    private_pem, public_pem = generate(values["jwt_alg"])
    policy = WebhookPolicy(account_id=who.account_id, private_pem=private_pem, **values)
    session.add(policy)
    await session.flush()
    await record(session, who.account_id, f"{SUBJECT}.created", SUBJECT, policy.id, who.actor,
                 summary(policy))  # fmt: skip
    return policy, public_pem


async def get(
    session: AsyncSession, account_id: str, ident: int, *, lock: bool = False
) -> WebhookPolicy:
    """A policy of the account; NotFound otherwise (also for another account's ids)."""
    query = select(WebhookPolicy).where(
        WebhookPolicy.account_id == account_id, WebhookPolicy.id == ident
    )
    if lock:
        query = query.with_for_update()
    policy = (await session.execute(query)).scalar_one_or_none()
    if policy is None:
        raise NotFound("Webhook policy not found")
    return policy


async def update(
    session: AsyncSession, who: Principal, policy: WebhookPolicy, values: dict[str, Any]
) -> bool:
    """Apply changed values; True when `disabled` changed (the caller re-evaluates the linked
    webhooks). The key pair belongs to the algorithm, so `jwt_alg` cannot change."""
    if "jwt_alg" in values and values["jwt_alg"] != policy.jwt_alg:
        raise invalid("jwt_alg", "cannot change (the key pair belongs to it): make a new policy")
    was_disabled = policy.disabled
    changed = False
    for name, value in values.items():
        if getattr(policy, name) != value:
            setattr(policy, name, value)
            changed = True
    if changed:
        policy.updated_at = clock.now()
        await session.flush()
        await record(session, who.account_id, f"{SUBJECT}.updated", SUBJECT, policy.id,
                     who.actor, summary(policy))  # fmt: skip
    return policy.disabled != was_disabled


async def delete(session: AsyncSession, who: Principal, policy: WebhookPolicy) -> None:
    """Delete an unused policy (422 while a webhook is linked to it). Call with the policy row
    locked (`get(..., lock=True)`), as linking locks it too: the two cannot cross."""
    used = await session.scalar(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(WebhookSubscription.account_id == policy.account_id, linked(policy.id))
    )
    if used:
        raise invalid("id", f"is used by {used} webhook(s): unlink them first")
    await session.delete(policy)
    await record(session, who.account_id, f"{SUBJECT}.deleted", SUBJECT, policy.id, who.actor,
                 summary(policy))  # fmt: skip
