"""Waking workers in other processes on PostgreSQL: LISTEN/NOTIFY on `landmark_events`.

A server process announces (NOTIFY, on a connection of its own, off the request path) when a
commit of that process recorded events; several commits close together make one NOTIFY. Each
worker LISTENs and fans out at once instead of at its next poll. A NOTIFY lost (a connection
dropped) only costs latency: the poll still finds the events. SQLite has no such channel; there
the worker in the server process is woken directly and other processes poll.
"""

import asyncio
import contextlib
import logging
from typing import Any

from landmark.core.db import asyncpg_dsn
from landmark.webhooks import engine

CHANNEL = "landmark_events"
RECONNECT_SECONDS = 1.0
log = logging.getLogger("landmark.webhooks")


async def announce(database_url: str, stop: asyncio.Event) -> None:
    """NOTIFY after commits of this process that recorded events, until `stop`."""
    target = asyncpg_dsn(database_url)
    if target is None:
        return
    committed = asyncio.Event()
    handle = engine.listen(committed)
    try:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                connection = await _connect(target)
                try:
                    while not stop.is_set():
                        await engine.wait_for(committed, stop, 5.0)
                        if committed.is_set():
                            committed.clear()
                            await connection.execute(f"NOTIFY {CHANNEL}")
                            await asyncio.sleep(engine.FAN_OUT_COALESCE_SECONDS)
                finally:
                    await connection.close()
            await engine.wait_for(stop, stop, RECONNECT_SECONDS)
    finally:
        engine.unlisten(handle)


async def listen(database_url: str, flag: asyncio.Event, stop: asyncio.Event) -> None:
    """Set `flag` on every NOTIFY, until `stop`."""
    target = asyncpg_dsn(database_url)
    if target is None:
        return
    while not stop.is_set():
        try:
            connection = await _connect(target)
            try:
                await connection.add_listener(CHANNEL, lambda *_: flag.set())
                while not stop.is_set() and not connection.is_closed():
                    await engine.wait_for(stop, stop, 1.0)
            finally:
                await connection.close()
        except Exception:
            log.warning("listening for committed events failed; polling meanwhile", exc_info=True)
        await engine.wait_for(stop, stop, RECONNECT_SECONDS)


async def _connect(target: str) -> Any:
    import asyncpg

    return await asyncpg.connect(target)
