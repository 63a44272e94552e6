"""Hearing other processes' commits on PostgreSQL: LISTEN on a channel, on a connection of its
own, reconnecting when it drops. NOTIFY is transactional, so what is heard has committed.

A listener that was not connected may have missed notifications: `connected(False)` tells its
owner so, and `connected(True)` that it hears everything again from now on. SQLite has no such
channel: `listen` returns at once and never calls `connected`.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from landmark.core.db import asyncpg_dsn

RECONNECT_SECONDS = 1.0
log = logging.getLogger("landmark.channels")


async def listen(
    database_url: str,
    channel: str,
    heard: Callable[[str], None],
    stop: asyncio.Event,
    connected: Callable[[bool], None] = lambda _: None,
) -> None:
    """`heard(payload)` on every NOTIFY on `channel`, until `stop`."""
    target = asyncpg_dsn(database_url)
    if target is None:
        return
    while not stop.is_set():
        try:
            await _listen_once(target, channel, heard, stop, connected)
        except Exception:
            log.warning("listening on %s failed; retrying", channel, exc_info=True)
        await wait_for(stop, stop, RECONNECT_SECONDS)


async def _listen_once(
    target: str,
    channel: str,
    heard: Callable[[str], None],
    stop: asyncio.Event,
    connected: Callable[[bool], None],
) -> None:
    """One connection's listening, until `stop` or the connection is lost."""
    connection = await connect(target)
    lost = asyncio.Event()
    connection.add_termination_listener(lambda *_: _lost(lost, connected))
    try:
        await connection.add_listener(channel, lambda *args: heard(args[3]))
        connected(True)
        await wait_for(lost, stop)
    finally:
        connected(False)
        await connection.close()


def _lost(lost: asyncio.Event, connected: Callable[[bool], None]) -> None:
    connected(False)  # at once: notifications may be missed from now on
    lost.set()


async def wait_for(flag: asyncio.Event, stop: asyncio.Event, seconds: float | None = None) -> None:
    """Until `flag` or `stop` is set, or `seconds` passed."""
    waits = [asyncio.ensure_future(flag.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def connect(target: str) -> Any:
    """A connection of its own (asyncpg DSN), outside every pool."""
    import asyncpg

    return await asyncpg.connect(target)
