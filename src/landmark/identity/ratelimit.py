"""Fixed-window rate limits per credential: in process by default, shared through Redis if set."""

import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from landmark.core.errors import RateLimited


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset: int  # epoch seconds at which the window ends

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(self.reset),
        }


class Counter(Protocol):
    async def incr(self, key: str, window: int) -> int: ...

    async def get(self, key: str) -> int: ...


class MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._window_of: dict[str, int] = {}

    async def incr(self, key: str, window: int) -> int:
        # Keys carry the window start, so stale ones are dropped when a new window begins.
        start = int(key.rsplit(":", 1)[1])
        if len(self._counts) > 100_000:
            self._counts = {k: v for k, v in self._counts.items() if self._window_of[k] >= start}
            self._window_of = {k: self._window_of[k] for k in self._counts}
        self._counts[key] = self._counts.get(key, 0) + 1
        self._window_of[key] = start
        return self._counts[key]

    async def get(self, key: str) -> int:
        return self._counts.get(key, 0)


class RedisCounter:
    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(url)

    async def incr(self, key: str, window: int) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window + 1)
            count, _ = await pipe.execute()
        return int(count)

    async def get(self, key: str) -> int:
        return int(await self.redis.get(key) or 0)


class RateLimiter:
    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    async def hit(self, subject: str, limit: int, window: int) -> Quota:
        """Count one request of `subject`; raises RateLimited when over the limit."""
        now = time.time()
        key, reset = _window(subject, window, now)
        count = await self.counter.incr(key, window)
        quota = Quota(limit, limit - count, reset)
        if count > limit:
            error = RateLimited(
                f"Rate limit of {limit} requests per {window} s exceeded", math.ceil(reset - now)
            )
            error.quota = quota  # type: ignore[attr-defined]
            raise error
        return quota

    async def peek(self, subject: str, limit: int, window: int) -> Quota:
        """The quota left to `subject`, without counting a request."""
        key, reset = _window(subject, window, time.time())
        return Quota(limit, limit - await self.counter.get(key), reset)


def _window(subject: str, window: int, now: float) -> tuple[str, int]:
    """The counter key of the fixed window `now` falls in, and when that window ends."""
    start = int(now // window * window)
    # The window's length is part of the key: windows of different lengths can start at the same
    # second (a minute's and an hour's, on the hour) and must not share a count.
    return f"landmark:rl:{subject}:{window}:{start}", start + window
