"""The `landmark` command: init's contract, demo, key rotation, and serve as a real process."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from conftest import PASSWORD, _free_port

LANDMARK = str(Path(sys.executable).parent / "landmark")


def run(args: list[str], database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LANDMARK_DATABASE_URL": database_url, **env}
    return subprocess.run(
        [LANDMARK, *args], capture_output=True, text=True, env=environment, timeout=120
    )


def init_args(slug: str) -> list[str]:
    return [
        "init",
        "--account",
        slug,
        "--name",
        "Widget Data Center",
        "--admin-email",
        f"admin@{slug}.test",
        "--admin-password",
        PASSWORD,
        "--json",
    ]


def counts(server) -> dict[str, int]:
    from landmark.core.events import Event
    from landmark.identity.models import Account, Credential, Membership, User

    async def count(session):
        return {
            m.__name__: await session.scalar(select(func.count()).select_from(m))
            for m in (Account, User, Membership, Credential, Event)
        }

    return server.run(count)


def test_init_contract(client, server, database_url) -> None:
    slug = f"wdc{os.getpid()}{int(time.time()) % 100000}"
    first = run(init_args(slug), database_url)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert set(result) == {"account", "user", "api_token"}
    assert result["account"]["id"] == slug and result["account"]["name"] == "Widget Data Center"
    assert result["account"]["uuid"] and result["user"]["email"] == f"admin@{slug}.test"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {result['api_token']}"}).json()
    assert me["role"] == "admin" and me["account"]["id"] == slug
    token = client.get(
        "/api/v1/tokens", headers={"Authorization": f"Bearer {result['api_token']}"}
    ).json()[0]
    days = (
        datetime.fromisoformat(token["expires_at"]) - datetime.fromisoformat(token["created_at"])
    ).days
    assert days in (364, 365)

    before = counts(server)
    second = run(init_args(slug), database_url)
    assert second.returncode == 1
    assert "already exists" in second.stderr and second.stdout == ""
    assert counts(server) == before

    readable = run(init_args(slug + "x")[:-1], database_url)
    assert readable.returncode == 0 and "Personal API token" in readable.stdout


def test_init_on_a_new_database_applies_migrations(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    result = run(init_args("fresh"), url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["api_token"].startswith("lmk_pat_")


def test_demo_loads_users(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    first = run(["demo"], url)
    assert first.returncode == 0, first.stderr
    assert "ada@demo.landmark.test" in first.stdout and "lmk_pat_" in first.stdout
    assert run(["demo"], url).returncode == 1


def test_keys_rotate_cli(client, tenant, database_url) -> None:
    mtm = lambda: client.post(  # noqa: E731
        "/services/mtm/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("apitoken", tenant.token),
    ).json()["access_token"]
    old = mtm()
    rotated = run(["keys", "rotate"], database_url)
    assert rotated.returncode == 0, rotated.stderr
    new = mtm()
    import jwt

    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    for token in (old, new):
        assert (
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )


def test_serve_starts_migrates_and_answers(tmp_path) -> None:
    port = _free_port()
    env = {**os.environ, "LANDMARK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"}
    process = subprocess.Popen(
        [LANDMARK, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
                break
            except httpx.TransportError:
                assert time.time() < deadline and process.poll() is None, "server did not start"
                time.sleep(0.2)
        assert ready.status_code == 200 and ready.json()["migrations"] == "current"
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/me").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/readyz" and line.get("status") == 200 for line in lines)
