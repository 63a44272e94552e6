"""SSRF guard: webhook targets must be public addresses unless the administrator allows them.

A target URL is checked when a subscription is created or changed, and again before every
delivery (DNS may have changed since). The host is resolved and every address it resolves to
must be global: loopback, private, link-local (169.254.169.254, the cloud metadata address),
CGNAT, multicast, reserved and unspecified addresses are refused, IPv4-mapped IPv6 included.
`LANDMARK_WEBHOOK_ALLOWED_HOSTS` (comma-separated host names, IP addresses or CIDR networks)
lifts the rule for what it lists. The sender connects to the address checked here (not to a
second resolution), so a DNS answer that changes between check and connect cannot slip by.
"""

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL = 2048
RESOLVE_TTL = 30.0  # seconds a resolution is reused by the sender


class Refused(Exception):
    """The target may not be called; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked target: the URL as given, and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


@dataclass(frozen=True)
class Allowed:
    hosts: frozenset[str]
    networks: tuple[Network, ...]

    def covers(self, host: str, address: IPAddress | None = None) -> bool:
        if host.lower() in self.hosts:
            return True
        return address is not None and any(address in n for n in self.networks)


@lru_cache(maxsize=16)
def allowed(setting: str) -> Allowed:
    """Parse LANDMARK_WEBHOOK_ALLOWED_HOSTS."""
    hosts: set[str] = set()
    networks: list[Network] = []
    for item in (part.strip() for part in setting.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.add(item.lower().strip("[]"))
    return Allowed(frozenset(hosts), tuple(networks))


def internal(address: IPAddress) -> bool:
    """True for any address that is not a public unicast one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return internal(address.ipv4_mapped)
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; Refused for anything else."""
    if len(url) > MAX_URL:
        raise Refused(f"is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("must be an http or https URL")
    if not parts.hostname:
        raise Refused("has no host")
    if parts.username or parts.password:
        raise Refused("must not carry credentials (use the authorization header)")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


_resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}


async def resolve(host: str, port: int, *, fresh: bool = False) -> list[str]:
    """The addresses of `host` (reused for RESOLVE_TTL seconds unless `fresh`)."""
    key = (host, port)
    cached = _resolved.get(key)
    if cached and not fresh and cached[0] > time.monotonic():
        return cached[1]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"host {host!r} does not resolve ({exc.strerror or exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if len(_resolved) > 10_000:
        _resolved.clear()
    _resolved[key] = (time.monotonic() + RESOLVE_TTL, addresses)
    return addresses


async def check(url: str, allowed_hosts: str, *, fresh: bool = False) -> Target:
    """Check a target URL; the Target to connect to, or Refused."""
    scheme, host, port = parse(url)
    rules = allowed(allowed_hosts)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [host] if literal else await resolve(host, port, fresh=fresh)
    if not addresses:
        raise Refused(f"host {host!r} does not resolve")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if internal(address) and not rules.covers(host, address):
            raise Refused(
                f"resolves to {address}, an internal address "
                "(allow it with LANDMARK_WEBHOOK_ALLOWED_HOSTS)"
            )
    return Target(url, scheme, host, port, addresses[0])
