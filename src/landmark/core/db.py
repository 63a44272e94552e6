"""Database engine, sessions, the declarative base and the tenant-scoping helper."""

import asyncio
import json
import re
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Executable,
    MetaData,
    Select,
    Table,
    any_,
    bindparam,
    event,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.exc import DisconnectionError
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


_LONG_INTEGER = re.compile(r"\d{19}")


def json_loads(text: str | bytes) -> Any:
    """`json.loads`, several times faster: orjson, unless the text may hold what orjson reads
    otherwise (an integer beyond 64 bits, which it makes a float) or refuses (a lone surrogate).
    A page of fact sheets with their relations reads thousands of JSON columns."""
    if _LONG_INTEGER.search(text if isinstance(text, str) else text.decode()):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, json_deserializer=json_loads
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=20, json_deserializer=json_loads)
    event.listen(engine.sync_engine.pool, "checkout", _replace_closed)
    return engine


def _replace_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, a terminated backend) is replaced
    before use: the pool tries another on DisconnectionError. asyncpg sees the close as it
    happens, so this costs no round trip; SQLAlchemy's pre-ping costs three per checkout
    (BEGIN, the ping, ROLLBACK), about 8% of an update's CPU."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the database closed this connection")


def asyncpg_dsn(database_url: str) -> str | None:
    """The plain asyncpg DSN of a PostgreSQL URL; None for any other database."""
    if not database_url.startswith("postgresql"):
        return None
    return "postgresql://" + database_url.split("://", 1)[1]


# What a read meets when PostgreSQL has dropped its pooled connection (restart, idle kill).
# InternalClientError: the server's farewell error has been read but not yet the close that
# follows it (the next turn of the event loop), and the connection refuses work.
DEAD_CONNECTION = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
    ConnectionError,
)


class Reads:
    """Lone SELECTs outside any ORM session, for the busiest reads (a record by id, the
    relations of a page of fact sheets).

    On PostgreSQL straight through an asyncpg pool of its own: one SELECT in autocommit sees
    committed data without BEGIN and ROLLBACK around it, and skipping SQLAlchemy's execution
    layer saves about a third of a read's CPU. SQLAlchemy still writes the SQL (compiled once per
    statement); the row's values are the ones SQLAlchemy's asyncpg dialect would give (asyncpg
    decodes them, JSON through the same codec). The pool neither pings a connection before use
    (three round trips) nor resets it after (one); a read that finds its connection dead is run
    once more on a fresh one, which is safe because it changes nothing. On SQLite the
    application's engine serves."""

    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dsn = asyncpg_dsn(url)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._sql: dict[int, tuple[Executable, str, tuple[str, ...]]] = {}

    async def first(self, statement: Executable, params: dict[str, Any]) -> Sequence[Any] | None:
        """The first row of `statement`, or None."""
        rows = await self._fetch(statement, params, first=True)
        return rows[0] if rows else None

    async def all(self, statement: Executable, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """Every row of `statement`, each a sequence of its columns' values."""
        return await self._fetch(statement, params, first=False)

    def one_of(self, column: Any, name: str) -> ColumnElement[bool]:
        """`column` among the values of the list parameter `name` (see `_among`)."""
        return _among(column, self.dsn is not None, name)

    async def _fetch(
        self, statement: Executable, params: dict[str, Any], first: bool
    ) -> Sequence[Sequence[Any]]:
        if self.dsn is None:
            async with self.engine.connect() as connection:
                result = await connection.execute(statement, params)
                return [tuple(row) for row in (result.fetchmany(1) if first else result.all())]
        sql, names = self._compiled(statement)
        args = [params[name] for name in names]
        pool = await self._open()
        for attempt in range(2):
            try:
                async with pool.acquire() as connection:
                    if first:
                        row = await connection.fetchrow(sql, *args)
                        return [tuple(row)] if row is not None else []
                    return await connection.fetch(sql, *args)  # type: ignore[no-any-return]
            except DEAD_CONNECTION:
                if attempt:
                    raise
                await pool.expire_connections()  # what closed one (a restart) closed them all
        return []  # not reached: the second attempt returns or raises

    def _compiled(self, statement: Executable) -> tuple[str, tuple[str, ...]]:
        # Keyed by identity: the busy statements are built once per resource and kept (held
        # here too, so an id is never reused by another statement).
        found = self._sql.get(id(statement))
        if found is None:
            compiled = statement.compile(dialect=postgresql_asyncpg.dialect())  # type: ignore[attr-defined]
            found = (statement, str(compiled), tuple(compiled.positiontup or ()))
            self._sql[id(statement)] = found
        return found[1], found[2]

    async def _open(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    assert self.dsn is not None
                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=10, init=_json_codecs, reset=_unchanged
                    )
        return self._pool

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _unchanged(_connection: asyncpg.Connection) -> None:
    """Nothing to reset when a read gives its connection back: a lone SELECT in autocommit
    leaves no session state. (asyncpg's default reset is one more statement, a round trip, per
    read; an open transaction is still rolled back.)"""


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """JSON as the engine reads it (`json_loads`)."""
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(
            kind, encoder=json.dumps, decoder=json_loads, schema="pg_catalog"
        )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def read_alone(
    sessions: async_sessionmaker[AsyncSession], statement: Executable, params: Any = None
) -> Sequence[Any]:
    """The rows of a lone SELECT run in autocommit on the sessions' engine: one round trip,
    where a session's transaction takes three (BEGIN, the SELECT, ROLLBACK). For the frequent
    checks of background loops (is any account behind its cursor, is any delivery due)."""
    engine: AsyncEngine = sessions.kw["bind"]
    async with engine.connect() as connection:
        alone = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return (await alone.execute(statement, params)).all()


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
    """`column` among `values` (see `_among`)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return _among(column, postgres, None, value=list(values))


def _among(column: Any, postgres: bool, key: str | None, **value: Any) -> ColumnElement[bool]:
    """`column` among the values of a list parameter: on PostgreSQL `= ANY` of one array
    parameter, so that a statement compiles, travels and is planned once whatever the list's
    length (SQLAlchemy renders an IN list anew for each length: the thousand keys of a bulk
    import's chunk, a page's hundred fact sheets); elsewhere IN."""
    if postgres:
        return column == any_(bindparam(key, type_=ARRAY(column.type), **value))  # type: ignore[no-any-return]
    return column.in_(bindparam(key, expanding=True, **value))  # type: ignore[no-any-return]


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
