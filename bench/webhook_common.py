"""Shared pieces of the webhook benches: a scratch PostgreSQL database, an account with
subscriptions, events written straight into the outbox, a fast receiver, `landmark` processes."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

import landmark.models  # noqa: F401  (every table)
from landmark.core.db import create_engine, session_factory
from landmark.core.migrate import upgrade

LANDMARK = str(Path(sys.executable).parent / "landmark")
POSTGRES = os.environ.get("LANDMARK_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
PASSWORD = "bench-password-123"

# A receiver that answers 200 at once and counts what it got (GET /count), in its own process.
RECEIVER = """
import sys, uvicorn
count = 0
async def app(scope, receive, send):
    global count
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "GET":
        body = str(count).encode()
    else:
        count += 1
        body = b"ok"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            http="httptools", loop="uvloop", access_log=False)
"""


# A receiver that notes, for each delivery, how long after its event's createdAt it arrived
# (GET /latencies returns them in milliseconds).
LATENCY_RECEIVER = """
import json, sys, time, datetime, uvicorn
latencies = []
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    arrived = time.time()
    if scope["method"] == "GET":
        answer = json.dumps(latencies).encode()
    else:
        created = datetime.datetime.fromisoformat(json.loads(body)["createdAt"]).timestamp()
        latencies.append((arrived - created) * 1000)
        answer = b"ok"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            http="httptools", loop="uvloop", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> str:
    return f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (shared machine)"


async def admin_sql(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES.rstrip("/") + "/postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


class ScratchDatabase:
    """A fresh PostgreSQL database named landmark_wh_<purpose>_<random>, dropped at the end."""

    def __init__(self, purpose: str) -> None:
        self.name = f"landmark_wh_{purpose}_{uuid.uuid4().hex[:8]}"
        self.url = f"{POSTGRES.rstrip('/')}/{self.name}".replace(
            "postgresql://", "postgresql+asyncpg://"
        )

    async def __aenter__(self) -> "ScratchDatabase":
        await admin_sql(f'CREATE DATABASE "{self.name}"')
        await upgrade(self.url)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await admin_sql(f'DROP DATABASE "{self.name}" WITH (FORCE)')


async def make_account(url: str, slug: str) -> tuple[Any, str]:
    """An account with its admin; (principal, API token)."""
    from landmark.identity import service
    from landmark.identity.pepper import load_pepper
    from landmark.settings import Settings

    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            await load_pepper(session, settings)
            made = await service.bootstrap_account(
                session, settings, slug=slug, name=slug, admin_email=f"admin@{slug}.bench",
                admin_password=PASSWORD,
            )  # fmt: skip
            await session.commit()
            return made, made.token.secret
    finally:
        await engine.dispose()


async def subscribe(
    url: str,
    slug: str,
    user_id: int,
    target: str,
    name: str,
    tags: tuple[str, str] = ("cmdb", "CI_CREATED"),
) -> None:
    """A LeanIX PUSH subscription to one event type (CI creations by default)."""
    from landmark.webhooks import service
    from landmark.webhooks.models import WebhookSubscription

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            who = await principal(session, slug, user_id)
            sub = WebhookSubscription(dialect="leanix", name=name, target_url=target,
                                      config={"tagSets": [list(tags)]})  # fmt: skip
            await service.create(session, who, sub)
            await session.commit()
    finally:
        await engine.dispose()


async def principal(session: Any, slug: str, user_id: int) -> Any:
    from sqlalchemy import select

    from landmark.identity.authn import Principal
    from landmark.identity.models import Account

    account = (await session.execute(select(Account).where(Account.id == slug))).scalar_one()
    return Principal(
        user_id=user_id, user_uuid=account.uuid, user_name="admin", user_email=None,
        user_kind="person", account_id=account.id, account_uuid=account.uuid,
        account_name=account.name, role="admin", permissions=frozenset({"webhooks"}),
        credential_id=None, credential_kind=None, rate_limit=10**6, rate_window=60,
        valid_until=None,
    )  # fmt: skip


async def record_events(url: str, slug: str, count: int) -> None:
    """`count` CI-created events in the account's outbox, committed in chunks of 5,000."""
    from landmark.core.events import record_many

    engine = create_engine(url)
    try:
        for start in range(0, count, 5000):
            async with session_factory(engine)() as session:
                items = [
                    ("ci.create", "ci", n, {"action": "create", "changes": {}})
                    for n in range(start, min(start + 5000, count))
                ]
                await record_many(session, slug, items)
                await session.commit()
    finally:
        await engine.dispose()


class Receiver:
    """A receiver in a process of its own: counting (default) or timing (LATENCY_RECEIVER)."""

    def __init__(self, program: str = RECEIVER) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.process = subprocess.Popen([sys.executable, "-c", program, str(self.port)])
        deadline = time.time() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/")
                return
            except httpx.TransportError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def count(self) -> int:
        return int(httpx.get(f"http://127.0.0.1:{self.port}/count").text)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([LANDMARK, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def environment(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LANDMARK_DATABASE_URL": url,
        "LANDMARK_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "LANDMARK_LOG_LEVEL": "WARNING",
        **extra,
    }


def wait(condition: Any, timeout: float, step: float = 0.05) -> float:
    """Seconds until `condition()` held; TimeoutError after `timeout`."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError
        time.sleep(step)
    return time.perf_counter() - started


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
