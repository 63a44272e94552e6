"""Database engine, sessions, the declarative base and the tenant-scoping helper."""

import json
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Executable,
    MetaData,
    Row,
    Select,
    Table,
    any_,
    bindparam,
    event,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from landmark.core.errors import NotFound

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both back ends (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType, list[str]: JSONType}


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class Reads:
    """Lone SELECTs outside any ORM session, for the busiest GETs (a CI by id).

    On PostgreSQL through an engine of its own in autocommit mode: a single SELECT sees committed
    data without BEGIN and ROLLBACK around it. Its pool does not ping a connection before each use
    (with asyncpg that is three more round trips); a read that finds its connection dead is run
    once more on a fresh one instead, which is safe because it changes nothing. On SQLite the
    application's engine serves (no round trips to save)."""

    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self.own = not url.startswith("sqlite")
        self.engine = (
            create_async_engine(url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=5)
            if self.own
            else engine
        )

    async def first(self, statement: Executable, params: dict[str, Any]) -> Row[Any] | None:
        for attempt in range(2):
            try:
                async with self.engine.connect() as connection:
                    return (await connection.execute(statement, params)).first()
            except DBAPIError as exc:
                if attempt or not exc.connection_invalidated:
                    raise
        return None  # not reached: the second attempt returns or raises

    async def dispose(self) -> None:
        if self.own:
            await self.engine.dispose()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        yield session


async def bulk_insert(
    connection: AsyncConnection, table: Table, columns: list[str], records: list[list[Any]]
) -> None:
    """Insert many rows (values in the order of `columns`) in the connection's transaction.

    PostgreSQL: COPY, which writes them as one statement; an executemany runs one INSERT per
    row (a bulk import spent most of its time there). The transaction must have begun on the
    server (a statement ran in it before), as the COPY goes straight to the driver. Values are
    passed as SQLAlchemy would bind them (JSON columns serialized, None as JSON null).
    SQLite: executemany."""
    if not records:
        return
    if connection.dialect.name != "postgresql":
        await connection.execute(
            insert(table), [dict(zip(columns, r, strict=True)) for r in records]
        )
        return
    for i, column in enumerate(columns):
        if isinstance(table.c[column].type, JSON):
            for record in records:
                record[i] = json.dumps(record[i])
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table.name, records=records, columns=columns)


def one_of(session: AsyncSession, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(:values)`: one array parameter instead of
    one per value, so that the thousand keys of a bulk import's chunk compile, travel and get
    planned cheaply (SQLAlchemy renders an IN list anew for each length)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)  # type: ignore[no-any-return]


M = TypeVar("M")


def scoped(model: type[M], account_id: str) -> Select[M]:
    """A select of `model` limited to one account: the only way tenant rows are read."""
    return select(model).where(model.account_id == account_id)  # type: ignore[attr-defined]


async def get_scoped(session: AsyncSession, model: type[M], account_id: str, ident: Any) -> M:
    """One row of `model` in the account, or NotFound (also for another account's ids)."""
    query = scoped(model, account_id).where(model.id == ident)  # type: ignore[attr-defined]
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{model.__name__} not found")
    return row
