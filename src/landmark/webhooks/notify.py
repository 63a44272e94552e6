"""Waking workers in other processes on PostgreSQL: LISTEN/NOTIFY on `landmark_events`.

A server process announces (NOTIFY, on a connection of its own, off the request path) when a
commit of that process recorded events; several commits close together make one NOTIFY. Each
worker LISTENs (core/channels.py) and fans out at once instead of at its next poll. A NOTIFY
lost (a connection dropped) only costs latency: the poll still finds the events. SQLite has no
such channel; there the worker in the server process is woken directly and other processes poll.
"""

import asyncio
import contextlib

from landmark.core import channels
from landmark.core.db import asyncpg_dsn
from landmark.webhooks import engine

CHANNEL = "landmark_events"


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
                connection = await channels.connect(target)
                try:
                    while not stop.is_set():
                        await channels.wait_for(committed, stop, 5.0)
                        if committed.is_set():
                            committed.clear()
                            await connection.execute(f"NOTIFY {CHANNEL}")
                            await asyncio.sleep(engine.FAN_OUT_COALESCE_SECONDS)
                finally:
                    await connection.close()
            await channels.wait_for(stop, stop, channels.RECONNECT_SECONDS)
    finally:
        engine.unlisten(handle)


async def listen(database_url: str, flag: asyncio.Event, stop: asyncio.Event) -> None:
    """Set `flag` on every NOTIFY, until `stop`."""
    await channels.listen(database_url, CHANNEL, lambda _: flag.set(), stop)
