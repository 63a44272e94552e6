"""The token pepper: the key of the keyed hash under which secrets are stored.

From LANDMARK_TOKEN_PEPPER when set (recommended in production, kept apart from the database);
otherwise generated at first start and kept in the database, so that every process shares it.
"""

import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from landmark.identity.models import InstanceSecret
from landmark.settings import Settings

_pepper: bytes | None = None


async def load_pepper(session: AsyncSession, settings: Settings) -> bytes:
    global _pepper
    if settings.token_pepper:
        _pepper = settings.token_pepper.encode()
        return _pepper
    stored = await session.get(InstanceSecret, "token_pepper")
    if stored is None:
        stored = InstanceSecret(name="token_pepper", value=secrets.token_urlsafe(48))
        session.add(stored)
        await session.commit()
    _pepper = stored.value.encode()
    return _pepper


def current_pepper() -> bytes:
    if _pepper is None:
        raise RuntimeError("the token pepper is not loaded")
    return _pepper
