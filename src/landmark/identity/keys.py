"""Signing keys, access-token JWTs and the published JWKS.

Keys are RSA (RS256: the algorithm LeanIX tokens use, and the quickest to verify). The newest
unretired key signs. A retired key keeps verifying, and stays in the JWKS, until every token it
signed has expired; then it is deleted.
"""

import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from landmark.core import clock
from landmark.core.errors import Unauthorized
from landmark.identity.models import SigningKey

ALGORITHM = "RS256"
AUDIENCE = "landmark"
RELOAD_INTERVAL = 5.0  # seconds between reloads caused by an unknown kid
VERIFIED_CACHE_SIZE = 4096  # tokens whose signature this process has checked (~4 MB at most)


def _generate() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = secrets.token_urlsafe(12)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return SigningKey(kid=kid, algorithm=ALGORITHM, private_pem=pem, public_jwk=jwk)


async def ensure_signing_key(session: AsyncSession) -> None:
    """Create the first signing key if there is none (at first start)."""
    active = await session.scalar(select(SigningKey).where(SigningKey.retired_at.is_(None)))
    if active is None:
        session.add(_generate())
        await session.commit()


async def rotate(session: AsyncSession, max_token_seconds: int) -> SigningKey:
    """Start signing with a new key; retire the old ones and drop those no token can still need."""
    now = clock.now()
    for key in (
        await session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None)))
    ).all():
        key.retired_at = now
    await session.execute(
        delete(SigningKey).where(SigningKey.retired_at < now - timedelta(seconds=max_token_seconds))
    )
    new = _generate()
    session.add(new)
    await session.commit()
    return new


@dataclass
class KeyRing:
    """The process's view of the signing keys, reloaded when a token names an unknown kid."""

    signing_kid: str = ""
    private: dict[str, Any] = field(default_factory=dict)
    public: dict[str, Any] = field(default_factory=dict)
    jwks: list[dict[str, Any]] = field(default_factory=list)
    loaded_at: float = 0.0
    verified: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> claims

    async def load(self, session: AsyncSession) -> None:
        keys = (await session.scalars(select(SigningKey).order_by(SigningKey.created_at))).all()
        self.public = {k.kid: RSAAlgorithm.from_jwk(k.public_jwk) for k in keys}
        self.jwks = [k.public_jwk for k in keys]
        active = [k for k in keys if k.retired_at is None]
        if active:
            self.signing_kid = active[-1].kid
            self.private = {
                self.signing_kid: serialization.load_pem_private_key(
                    active[-1].private_pem.encode(), password=None
                )
            }
        self.loaded_at = time.monotonic()

    async def sign(
        self, session: AsyncSession, claims: dict[str, Any], issuer: str, lifetime: int
    ) -> str:
        """A JWT signed with the newest key (a rotation by another process is picked up here)."""
        newest = await session.scalar(
            select(SigningKey.kid)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc())
            .limit(1)
        )
        if newest != self.signing_kid:
            await self.load(session)
        now = int(clock.timestamp())
        payload = {
            "iss": issuer,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(
            payload,
            self.private[self.signing_kid],
            algorithm=ALGORITHM,
            headers={"kid": self.signing_kid, "typ": "at+jwt"},
        )

    async def verify(self, session: AsyncSession, token: str) -> dict[str, Any]:
        """The claims of a token signed by one of our keys, unexpired; else Unauthorized.

        A token's signature is checked once; the claims are remembered (a token is immutable, and
        a key is deleted only after its tokens expired), so a reused token costs a dict lookup.
        """
        claims = self.verified.get(token)
        if claims is None:
            claims = await self._check_signature(session, token)
            if len(self.verified) >= VERIFIED_CACHE_SIZE:
                del self.verified[next(iter(self.verified))]  # the oldest
            self.verified[token] = claims
        if claims["exp"] <= clock.timestamp():
            raise Unauthorized("The access token expired", _challenge("invalid_token", "expired"))
        return claims

    async def _check_signature(self, session: AsyncSession, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            kid = str(header.get("kid", ""))
            if kid not in self.public and time.monotonic() - self.loaded_at > RELOAD_INTERVAL:
                await self.load(session)  # a key made by `landmark keys rotate` elsewhere
            key = self.public.get(kid)
            if key is None or header.get("alg") != ALGORITHM:
                raise Unauthorized("The access token is invalid", _challenge("invalid_token"))
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is invalid", _challenge("invalid_token")) from exc
        if not isinstance(claims.get("exp"), int):
            raise Unauthorized("The access token is invalid", _challenge("invalid_token"))
        return claims


def _challenge(error: str, description: str = "") -> str:
    text = f'Bearer realm="landmark", error="{error}"'
    return text + (f', error_description="The access token {description}"' if description else "")


challenge = _challenge
