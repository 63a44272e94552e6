"""Test harness: a real Landmark server on a free port, over a real database.

SQLite by default (a fresh file per run). With LANDMARK_TEST_POSTGRES=postgresql://user@host:port
the run creates a fresh PostgreSQL database and drops it at the end; when that server cannot be
reached the run fails, it never skips.
"""

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from landmark.app import create_app
from landmark.core import clock
from landmark.core.migrate import upgrade_sync
from landmark.settings import Settings

PASSWORD = "correct-horse-battery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@contextmanager
def fresh_database(directory: Path) -> Iterator[str]:
    """An empty database: a SQLite file in `directory`, or a PostgreSQL database dropped after."""
    server = os.environ.get("LANDMARK_TEST_POSTGRES")
    if not server:
        yield f"sqlite+aiosqlite:///{directory / 'landmark.db'}"
        return
    import asyncpg

    name = f"landmark_test_{uuid.uuid4().hex[:10]}"
    admin = server.rstrip("/") + "/postgres"

    async def admin_sql(sql: str) -> None:
        connection = await asyncpg.connect(admin.replace("postgresql+asyncpg", "postgresql"))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    yield f"{server.rstrip('/')}/{name}".replace("postgresql://", "postgresql+asyncpg://")
    asyncio.run(admin_sql(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def close_connections(dsn: str, pids: list[int] | None = None) -> list[int]:
    """Close PostgreSQL backends as a restart does (`pids`, else every other one of the
    database) and wait, on a connection of its own, until they have exited: their clients then
    have the server's farewell and the close waiting to be read. Returns the pids closed."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        if pids is None:
            others = "SELECT array_agg(pid) FROM pg_stat_activity"
            others += " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            pids = list(await connection.fetchval(others) or [])
        close = "SELECT pid FROM unnest($1::int[]) AS pid WHERE pg_terminate_backend(pid)"
        closed = [row["pid"] for row in await connection.fetch(close, pids)]
        there = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])"
        for _ in range(200):
            if not await connection.fetchval(there, closed):
                return closed
            await asyncio.sleep(0.02)
        raise AssertionError(f"backends {closed} still there")
    finally:
        await connection.close()


class LogCapture(logging.Handler):
    """Every formatted log line of the run, to prove no secret is ever logged."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        from landmark.core.logging import JSONFormatter

        self.lines.append(JSONFormatter().format(record))


class Server:
    """A uvicorn server running create_app in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self) -> "Server":
        self.thread.start()
        deadline = time.time() + 30
        # On PostgreSQL also until it hears data model changes: requests read no model version
        # from then on, and the tests that count statements count from then on.
        while not self.server.started or not self._listening():
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def _listening(self) -> bool:
        if not self.settings.resolved_database_url.startswith("postgresql"):
            return True
        versions = getattr(self.app.state, "model_versions", None)
        return versions is not None and versions.listening

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def run(self, coroutine_factory: Callable[[Any], Any]) -> Any:
        """Run `coroutine_factory(session)` on the server's loop, in a session that commits."""

        async def work() -> Any:
            async with self.app.state.sessions() as session:
                result = await coroutine_factory(session)
                await session.commit()
                return result

        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(work(), self.loop).result(timeout=30)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "base_url": "http://testserver.invalid",
        "rate_limit": 100_000,
        "auth_cache_seconds": 2.0,
        "log_level": "INFO",
        # Webhook receivers of the tests listen on 127.0.0.1; failed deliveries retry quickly.
        "webhook_allowed_hosts": "127.0.0.1",
        "webhook_retry_seconds": 0.2,
        "webhook_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    yield capture


@pytest.fixture(scope="session")
def server(database_url: str, logs: LogCapture) -> Iterator[Server]:
    upgrade_sync(database_url)
    running = Server(make_settings(database_url)).start()
    logging.getLogger().addHandler(logs)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


class Tenant:
    """An account with an admin, made through the same code as `landmark init`."""

    def __init__(self, server: Server, slug: str) -> None:
        from landmark.identity import service

        self.slug = slug
        self.email = f"admin@{slug}.example"
        made = server.run(
            lambda s: service.bootstrap_account(
                s,
                server.settings,
                slug=slug,
                name=f"Tenant {slug}",
                admin_email=self.email,
                admin_password=PASSWORD,
            )
        )
        self.uuid = str(made.account.uuid)
        self.admin_id = made.admin.id
        self.token = made.token.secret
        self.server = server

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def add_user(self, client: httpx.Client, role: str, **extra: Any) -> dict[str, Any]:
        """A user with that role and a personal token of their own (in `token`)."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@{self.slug}.example"
        body = {"email": email, "name": f"A {role}", "password": PASSWORD, "role": role, **extra}
        response = client.post("/api/v1/users", json=body, headers=self.auth)
        assert response.status_code == 201, response.text
        user = response.json()
        basic = httpx.BasicAuth(email, PASSWORD)
        made = client.post(
            "/api/v1/tokens", json={"name": "t"}, auth=basic, headers={"X-Requested-By": "t"}
        )
        assert made.status_code == 201, made.text
        user["token"] = made.json()["token"]
        user["auth"] = {"Authorization": f"Bearer {user['token']}"}
        user["password"] = PASSWORD
        return user


@pytest.fixture
def tenant(server: Server) -> Tenant:
    return Tenant(server, f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
def other_tenant(server: Server) -> Tenant:
    return Tenant(server, f"o{uuid.uuid4().hex[:10]}")


ROOT = Path(__file__).resolve().parent.parent
