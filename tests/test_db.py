"""core/db.py against a real PostgreSQL closing its connections."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, literal_column, select

from conftest import close_connections
from landmark.core.db import Reads, asyncpg_dsn, create_engine


async def test_a_read_outlives_its_connection_closing_midway(database_url: str) -> None:
    """PostgreSQL's farewell (an error, then the close) arrives over two turns of the event loop;
    a read that comes between them finds a connection that refuses work but is not yet closed.
    The read is run again on a fresh connection, unseen by its caller."""
    dsn = asyncpg_dsn(database_url)
    if dsn is None:
        pytest.skip("PostgreSQL: SQLite has no server to close connections")
    engine = create_engine(database_url)
    reads = Reads(database_url, engine)
    try:
        pid = await reads.first(select(func.pg_backend_pid()), {})
        assert pid is not None
        # Blocking this loop while the backend goes: both the error and the close wait unread.
        with ThreadPoolExecutor(1) as thread:
            assert thread.submit(asyncio.run, close_connections(dsn, [pid[0]])).result()
        await asyncio.sleep(0)  # this turn reads nothing yet (the task ran first)
        await asyncio.sleep(0)  # this one reads the error; the close is read on the next
        assert await reads.first(select(literal_column("7")), {}) == (7,)
        assert (await reads.first(select(func.pg_backend_pid()), {}))[0] != pid[0]
    finally:
        await reads.dispose()
        await engine.dispose()
