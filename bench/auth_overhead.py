"""What checking a credential costs, in process, without HTTP.

Figure (issue): "Checking a bearer JWT adds under 100 µs to a request (median); a personal token
under 200 µs."

Times `await Authenticator.authenticate(headers, session)` for a JWT (minted as POST /oauth/token
does), a personal token and HTTP Basic, over a fresh SQLite database in a temp directory (or
LANDMARK_DATABASE_URL if set). The steady state is the server's: a checked credential is cached
per process (auth_cache_seconds, 2 s by default, so it is re-read now and then, as in the server).
The cold path (auth_cache_seconds=0: a database read, or argon2, on every check) is printed
separately. Each check gets a fresh session, opened and closed outside the timing.

Run: .venv/bin/python bench/auth_overhead.py [--iterations 20000]
"""

import argparse
import asyncio
import base64
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from starlette.datastructures import Headers

from landmark.core.db import create_engine, session_factory
from landmark.core.migrate import upgrade
from landmark.identity import authn, service
from landmark.identity.keys import KeyRing, ensure_signing_key
from landmark.identity.pepper import load_pepper
from landmark.settings import Settings

EMAIL, PASSWORD = "admin@bench.example", "bench-password-123"
TARGETS = {"JWT": 100, "personal token": 200}  # median, µs


async def setup(settings: Settings, sessions) -> tuple[authn.Authenticator, dict[str, Headers]]:
    """An authenticator; headers for an admin's personal token, a JWT of their API key, Basic."""
    async with sessions() as session:
        await ensure_signing_key(session)
        pepper = await load_pepper(session, settings)
        made = await service.bootstrap_account(
            session,
            settings,
            slug="bench",
            name="Bench",
            admin_email=EMAIL,
            admin_password=PASSWORD,
        )
        principal = await authn.member_principal(session, settings, made.admin, "bench")
        key_id = (
            await service.create_api_key(session, settings, principal, "b", None)
        ).credential.key_id
        await session.commit()
        keyring = KeyRing()
        await keyring.load(session)
        claims = {  # what POST /oauth/token puts in an access token
            "sub": str(principal.user_uuid),
            "cid": key_id,
            "acc": principal.account_id,
            "client_id": f"lmk_ci_{key_id}",
            "scope": " ".join(sorted(principal.permissions)),
        }
        args = (claims, settings.base_url, settings.access_token_seconds)
        jwt = await keyring.sign(session, *args)
    basic = base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()
    return authn.Authenticator(settings, keyring, pepper), {
        "JWT": Headers({"authorization": f"Bearer {jwt}"}),
        "personal token": Headers({"authorization": f"Bearer {made.token.secret}"}),
        "Basic": Headers({"authorization": f"Basic {basic}", "x-requested-by": "bench"}),
    }


async def measure(authenticator, sessions, headers: Headers, n: int, warmup: int) -> list[float]:
    """Microseconds per authenticate() call, after `warmup` untimed calls."""
    times = []
    for i in range(warmup + n):
        async with sessions() as session:
            started = time.perf_counter_ns()
            await authenticator.authenticate(headers, session)
            elapsed = time.perf_counter_ns() - started
        if i >= warmup:
            times.append(elapsed / 1000)
    return times


def report(label: str, times: list[float]) -> None:
    times.sort()
    median, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
    line = f"  {label:<24} median {median:9.1f} µs   p99 {p99:9.1f} µs   (n={len(times)})"
    if label in TARGETS:
        met = "MET" if median < TARGETS[label] else "MISSED"
        line += f"   target: median < {TARGETS[label]} µs: {met}"
    print(line)


async def main(iterations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("LANDMARK_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/bench.db"
        settings = Settings(_env_file=None, database_url=url, var_dir=Path(tmp))  # type: ignore[call-arg]
        await upgrade(settings.resolved_database_url)
        engine = create_engine(settings.resolved_database_url)
        sessions = session_factory(engine)
        try:
            warm, creds = await setup(settings, sessions)
            loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
            print(
                f"Python {platform.python_version()}, {os.cpu_count()} cores, event loop {loop}, "
                f"database {settings.resolved_database_url.split(':')[0]}, load average "
                f"{os.getloadavg()[0]:.2f} (other work on the machine skews the figures)"
            )
            print("Steady state (a checked credential is cached per process, as in the server):")
            for label, headers in creds.items():
                report(label, await measure(warm, sessions, headers, iterations, 1000))

            print("Cold path (auth_cache_seconds=0: every check reads the database):")
            cold_settings = settings.model_copy(update={"auth_cache_seconds": 0})
            cold = authn.Authenticator(cold_settings, warm.keyring, warm.pepper)
            for label in ("JWT", "personal token"):
                times = await measure(cold, sessions, creds[label], max(iterations // 10, 500), 100)
                report(f"{label} (cold)", times)
            report("Basic (cold, argon2id)", await measure(cold, sessions, creds["Basic"], 20, 2))
        finally:
            await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    try:
        import uvloop  # the server's event loop (uvicorn[standard])
    except ImportError:
        uvloop = None
    (uvloop.run if uvloop else asyncio.run)(main(args.iterations))
