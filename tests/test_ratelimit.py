"""Rate limits per credential, configurable per account, shared through Redis across processes."""

import os

import pytest

from conftest import Server, make_settings

REDIS = os.environ.get("LANDMARK_TEST_REDIS", "redis://127.0.0.1:6379/15")


def limit_account(client, tenant, limit: int, window: int = 3600) -> None:
    response = client.patch(
        "/api/v1/account",
        json={"rate_limit": limit, "rate_limit_window": window},
        headers=tenant.auth,
    )
    assert response.status_code == 200


def test_headers_and_429(client, tenant) -> None:
    limit_account(client, tenant, 3)
    first = client.get("/api/v1/me", headers=tenant.auth)
    assert first.headers["x-ratelimit-limit"] == "3"
    assert first.headers["x-ratelimit-remaining"] == "2"
    reset = int(first.headers["x-ratelimit-reset"])
    assert (
        client.get("/api/v1/account", headers=tenant.auth).headers["x-ratelimit-remaining"] == "1"
    )
    assert client.get("/api/v1/me", headers=tenant.auth).headers["x-ratelimit-remaining"] == "0"
    over = client.get("/api/v1/me", headers=tenant.auth)
    assert over.status_code == 429
    assert 0 < int(over.headers["retry-after"]) <= 3600
    assert (
        over.headers["x-ratelimit-remaining"] == "0"
        and int(over.headers["x-ratelimit-reset"]) == reset
    )
    assert over.headers["content-type"] == "application/problem+json"
    # In the other dialects too.
    assert client.get("/services/mtm/v1/apiTokens", headers=tenant.auth).json()["status"] == "ERROR"


def test_limits_are_per_credential(client, tenant) -> None:
    limit_account(client, tenant, 2)
    other = client.post("/api/v1/tokens", json={"name": "second"}, headers=tenant.auth)
    assert other.status_code == 201
    assert client.get("/api/v1/me", headers=tenant.auth).status_code == 200
    assert client.get("/api/v1/me", headers=tenant.auth).status_code == 429
    second = {"Authorization": f"Bearer {other.json()['token']}"}
    assert client.get("/api/v1/me", headers=second).status_code == 200


def test_unauthenticated_requests_carry_no_quota(client) -> None:
    assert "x-ratelimit-limit" not in client.get("/healthz").headers


@pytest.fixture
def redis_servers(database_url):
    import redis

    redis.Redis.from_url(REDIS).ping()  # fails loudly when Redis cannot be reached
    servers = [Server(make_settings(database_url, redis_url=REDIS)).start() for _ in range(2)]
    yield servers
    for running in servers:
        running.stop()


def test_redis_shares_counters_between_processes(client, tenant, redis_servers) -> None:
    import httpx

    limit_account(client, tenant, 4)
    remaining = []
    for i in range(4):
        response = httpx.get(f"{redis_servers[i % 2].url}/api/v1/me", headers=tenant.auth)
        assert response.status_code == 200
        remaining.append(response.headers["x-ratelimit-remaining"])
    assert remaining == ["3", "2", "1", "0"]
    for running in redis_servers:
        assert httpx.get(f"{running.url}/api/v1/me", headers=tenant.auth).status_code == 429


def test_windows_of_different_lengths_never_share_a_count() -> None:
    """On the hour a minute's window and an hour's start at the same second (the account's
    limit was changed from one to the other): each keeps its own count."""
    from landmark.identity.ratelimit import _window

    on_the_hour = 3600 * 493_000
    assert _window("cred", 60, on_the_hour)[0] != _window("cred", 3600, on_the_hour)[0]
