"""Alembic, driven from code: the same migrations on SQLite and PostgreSQL."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from landmark.core.db import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def pending_migrations(connection: Connection) -> list[str]:
    """Revisions not yet applied to the connected database."""
    current = set(MigrationContext.configure(connection).get_current_heads())
    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    if current == heads:
        return []
    return [
        rev.revision for rev in script.iterate_revisions(tuple(heads), tuple(current) or "base")
    ]


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def upgrade(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


def upgrade_sync(url: str) -> None:
    asyncio.run(upgrade(url))
