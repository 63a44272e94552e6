"""The HTTP side of a delivery: one pooled client per worker, limits, and the SSRF check before
each call.

Every request has a connect timeout and a total timeout, follows no redirect (a 3xx is a failed
delivery), names Landmark in its User-Agent, and reads at most `webhook_response_max_bytes` of
the answer (what is kept for the deliveries log). The target is checked by the SSRF guard right
before the call and the connection goes to the address that was checked.
"""

import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from landmark.settings import Settings
from landmark.webhooks import ssrf


def _version() -> str:
    try:
        return version("landmark")
    except PackageNotFoundError:  # running from a source tree
        return "0"


USER_AGENT = f"Landmark/{_version()} (webhooks)"
# Headers of the answer worth keeping in the log (the rest is noise or could be large).
KEPT_HEADERS = 20


@dataclass
class Result:
    """The outcome of one attempt."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        """Why the attempt failed, for `last_error`."""
        if self.error:
            return self.error
        return f"HTTP {self.status}: {self.body[:200]}"


class Sender:
    """Sends requests through one pooled aiohttp session (its C parser keeps a worker's CPU for
    thousands of deliveries a second); `close` when done."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=settings.webhook_max_connections, limit_per_host=0, use_dns_cache=False
            ),
            timeout=aiohttp.ClientTimeout(
                total=settings.webhook_timeout_seconds,
                sock_connect=settings.webhook_connect_timeout_seconds,
            ),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,  # the log keeps the answer as sent, within the size cap
            trust_env=False,  # no proxy from the environment: the SSRF check must hold
        )

    async def close(self) -> None:
        await self.client.close()

    async def send(self, method: str, url: str, headers: dict[str, str], body: str) -> Result:
        started = time.perf_counter()
        result = await self._attempt(method, url, headers, body)
        result.duration_ms = round((time.perf_counter() - started) * 1000)
        return result

    async def _attempt(self, method: str, url: str, headers: dict[str, str], body: str) -> Result:
        try:
            target = await ssrf.check(url, self.settings.webhook_allowed_hosts)
        except ssrf.Refused as exc:
            return Result(error=f"refused: target {exc}")
        request = self.client.request(
            method,
            pinned(target),
            data=body.encode(),
            headers={**headers, "Host": urlsplit(url).netloc.rsplit("@", 1)[-1]},
            allow_redirects=False,
            server_hostname=target.host if target.scheme == "https" else None,
        )
        try:
            async with request as response:
                content = await _read_capped(response, self.settings.webhook_response_max_bytes)
                kept = dict(list(response.headers.items())[:KEPT_HEADERS])
                text = content.decode("utf-8", "replace")
                return Result(status=response.status, headers=kept, body=text)
        except TimeoutError:
            return Result(error=f"timed out after {self.settings.webhook_timeout_seconds} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return Result(error=f"{type(exc).__name__}: {exc}"[:500])


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the answer; the rest is not read (the connection is dropped)."""
    content = bytearray()
    while len(content) < limit:
        chunk = await response.content.read(limit - len(content))
        if not chunk:
            break
        content += chunk
    return bytes(content)


def pinned(target: ssrf.Target) -> str:
    """The target URL with its host replaced by the checked address."""
    parts = urlsplit(target.url)
    host = f"[{target.address}]" if ":" in target.address else target.address
    return urlunsplit((parts.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))


def public_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """Request headers as shown in the log (Authorization masked)."""
    return {k: (mask(v) if k.lower() == "authorization" else v) for k, v in headers.items()}


def mask(value: str | None) -> str | None:
    """An authorization header as shown back: its scheme and a mask, never the secret."""
    if not value:
        return value
    scheme, _, secret = value.partition(" ")
    return f"{scheme} ****" if secret else "****"
