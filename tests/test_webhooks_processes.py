"""Webhooks with real processes: `landmark webhooks test`, SIGKILL of the server and of the
worker under load (nothing lost), and two `landmark worker` processes sharing the queue."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from conftest import PASSWORD, _free_port, fresh_database
from webhook_helpers import Receiver, wait_until

LANDMARK = str(Path(sys.executable).parent / "landmark")
WH = "/services/webhooks/v1"
PF = "/services/pathfinder/v1"
FAST = {
    "LANDMARK_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "LANDMARK_WEBHOOK_RETRY_SECONDS": "0.2",
    "LANDMARK_WEBHOOK_LEASE_SECONDS": "2",
    "LANDMARK_WEBHOOK_TIMEOUT_SECONDS": "1",
    "LANDMARK_WORKER_POLL_SECONDS": "0.1",
    "LANDMARK_LOG_LEVEL": "WARNING",
}


def environment(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "LANDMARK_DATABASE_URL": database_url, **FAST, **extra}


class Process:
    """A `landmark` command running in the background, its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Process":
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [LANDMARK, *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def serve(database_url: str, port: int, log: Path, *args: str, **extra: str) -> Process:
    """`landmark serve --port PORT ARGS...`, once it answers."""
    server = Process(["serve", "--port", str(port), *args], environment(database_url, **extra), log)
    server.start()
    deadline = time.time() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/readyz")
            return server
        except httpx.TransportError:
            assert time.time() < deadline and server.process.poll() is None, log.read_text()
            time.sleep(0.1)


def init(database_url: str, slug: str) -> dict[str, Any]:
    done = subprocess.run(
        [LANDMARK, "init", "--account", slug, "--name", slug, "--admin-email",
         f"admin@{slug}.test", "--admin-password", PASSWORD, "--json"],
        env=environment(database_url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def query(database_url: str, work: Any) -> Any:
    """Run `work(session)` against the database from the test process."""
    from landmark.core.db import create_engine, session_factory

    async def run() -> Any:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def test_cli_sends_a_sample_event_and_shows_the_answer(client, server, tenant, receiver) -> None:
    body = {
        "identifier": "cli",
        "deliveryType": "PUSH",
        "targetUrl": receiver.url,
        "tagSets": [["cmdb", "CI_CREATED"]],
        "authorizationHeader": "Bearer s3cret",
    }
    made = client.post(f"{WH}/subscriptions", json=body, headers=tenant.auth).json()["data"]
    env = environment(server.settings.database_url)
    done = subprocess.run([LANDMARK, "webhooks", "test", made["id"]], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    assert "-> 200" in done.stdout and '"received": 0' in done.stdout
    sample = receiver.received[0]
    assert sample.json()["type"] == "WebhookTestEvent"
    assert sample.headers["Authorization"] == "Bearer s3cret"
    log = client.get(f"{WH}/subscriptions/{made['id']}/deliveries", headers=tenant.auth)
    assert log.json()["data"][0]["httpStatus"] == 200
    # Refused targets, PULL subscriptions and unknown ids end in an error.
    env_strict = {**env, "LANDMARK_WEBHOOK_ALLOWED_HOSTS": ""}
    refused = subprocess.run([LANDMARK, "webhooks", "test", made["id"]], env=env_strict,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode == 1 and "internal address" in refused.stdout
    unknown = subprocess.run([LANDMARK, "webhooks", "test", "999999"], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert unknown.returncode == 1 and "no subscription" in unknown.stderr
    assert len(receiver.received) == 1


def test_sigkill_of_server_and_worker_loses_no_delivery(own_database, tmp_path) -> None:
    """Fact sheets are created while the worker and then the server are killed with SIGKILL and
    restarted; every committed event reaches the receiver at least once."""
    receiver = Receiver(status=lambda n: 200).start()
    slow = threading.Event()
    original = receiver.status
    receiver.status = lambda n: (time.sleep(0.1) if slow.is_set() else None) or original(n)
    port = _free_port()
    log = tmp_path / "processes.log"
    made = init(own_database, "kill")
    auth = {"Authorization": f"Bearer {made['api_token']}"}
    server = serve(own_database, port, log, LANDMARK_WORKER_IN_PROCESS="false")
    worker = Process(["worker"], environment(own_database), log).start()
    base = f"http://127.0.0.1:{port}"
    try:
        sub = httpx.post(f"{base}{WH}/subscriptions", headers=auth, json={
            "identifier": "k", "deliveryType": "PUSH", "targetUrl": receiver.url,
            "tagSets": [["pathfinder", "FACT_SHEET_CREATED"]]}).json()["data"]  # fmt: skip
        assert sub["id"]
        slow.set()
        stop = threading.Event()

        def load() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    httpx.post(f"{base}{PF}/factSheets", headers=auth, timeout=5,
                               json={"type": "Application", "name": f"app-{n}"})  # fmt: skip
                except httpx.TransportError:
                    time.sleep(0.05)  # the server is down: try again after its restart

        writer = threading.Thread(target=load)
        writer.start()
        for _ in range(3):  # the worker dies while a request is at the receiver, three times
            seen = len(receiver.received)
            receiver.wait_for(lambda r, seen=seen: len(r) > seen, timeout=30)
            worker.kill()
            time.sleep(0.3)
            worker.start()
        time.sleep(0.5)
        server.kill()  # the API dies mid-request
        server = serve(own_database, port, log, LANDMARK_WORKER_IN_PROCESS="false")
        time.sleep(0.7)
        stop.set()
        writer.join()
        wanted = created_seqs(own_database)
        assert len(wanted) > 20

        def all_received() -> bool:
            got = {b["transactionSequenceNumber"] for b in receiver.bodies()}
            return set(wanted) <= got

        wait_until(all_received, timeout=60)
        wait_until(lambda: queue_left(own_database) == 0, timeout=30)
        seqs = [b["transactionSequenceNumber"] for b in receiver.bodies()]
        # The requests cut off by the kills were sent again: at least once, not exactly once.
        assert len(seqs) > len(set(seqs))
    finally:
        stop_all = [worker, server]
        for process in stop_all:
            process.stop()
        receiver.stop()


def created_seqs(database_url: str) -> list[int]:
    from landmark.core.events import Event

    async def read(session: Any) -> list[int]:
        rows = await session.scalars(
            select(Event.seq).where(Event.account_id == "kill", Event.type == "FACT_SHEET_CREATED")
        )
        return list(rows)

    return list(query(database_url, read))


def queue_left(database_url: str) -> int:
    from landmark.webhooks.models import PENDING, WebhookDelivery

    async def count(session: Any) -> int:
        statement = select(func.count()).select_from(WebhookDelivery)
        return int(await session.scalar(statement.where(WebhookDelivery.state == PENDING)))

    return int(query(database_url, count))


def test_two_workers_share_the_queue_without_duplicates(own_database, tmp_path) -> None:
    from landmark.core.events import record_many
    from landmark.webhooks import service
    from landmark.webhooks.models import SENT, WebhookDelivery, WebhookSubscription
    from webhook_helpers import admin_principal

    receiver = Receiver().start()
    made = init(own_database, "pair")
    count = 600

    async def setup(session: Any) -> None:
        who = await admin_principal(session, "pair", made["user"]["id"])
        sub = WebhookSubscription(dialect="leanix", name="pair", target_url=receiver.url,
                                  config={"tagSets": [["cmdb", "CI_CREATED"]]})  # fmt: skip
        await service.create(session, who, sub)
        await session.commit()
        items = [("ci.create", "ci", n, {"action": "create", "changes": {}}) for n in range(count)]
        await record_many(session, "pair", items)
        await session.commit()

    query(own_database, setup)
    env = environment(own_database, LANDMARK_WEBHOOK_CLAIM_BATCH="20")
    workers = [Process(["worker"], env, tmp_path / f"w{n}.log").start() for n in range(2)]
    try:
        receiver.wait_for(lambda r: len(r) >= count, timeout=90)
        time.sleep(0.5)
        seqs = [b["transactionSequenceNumber"] for b in receiver.bodies()]
        assert len(seqs) == count and len(set(seqs)) == count  # each once

        async def senders(session: Any) -> set[str]:
            rows = await session.scalars(
                select(WebhookDelivery.locked_by).where(WebhookDelivery.state == SENT)
            )
            return {row.split(":")[1] for row in rows}  # host:pid:nonce

        assert len(query(own_database, senders)) == 2  # both workers took a share
    finally:
        for worker in workers:
            worker.stop()
        receiver.stop()
