"""A real HTTP receiver for webhook tests: a threaded http.server on 127.0.0.1."""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every request; `status(n)` decides the answer to the n-th request (0-based)."""

    status: Callable[[int], int] = lambda n: 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    n = len(receiver.received)
                    receiver.received.append(
                        Received(self.command, self.path, dict(self.headers), body, time.time())
                    )
                code = receiver.status(n)
                answer = json.dumps({"received": n}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.json() for r in self.received]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 15
    ) -> list[Received]:
        """Wait until `predicate(received)` holds; AssertionError after `timeout` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                seen = list(self.received)
            if predicate(seen):
                return seen
            time.sleep(0.02)
        raise AssertionError(f"receiver: condition not met; got {len(seen)} requests")


def wait_until(check: Callable[[], Any], timeout: float = 15) -> Any:
    """Poll `check()` until it returns something truthy; AssertionError after `timeout`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


async def admin_principal(session: Any, slug: str, user_id: int) -> Any:
    """The principal of an account's admin, for calling domain services directly."""
    from sqlalchemy import select

    from landmark.identity.authn import Principal
    from landmark.identity.models import Account
    from landmark.identity.permissions import Permission

    account = (await session.execute(select(Account).where(Account.id == slug))).scalar_one()
    return Principal(
        user_id=user_id, user_uuid=account.uuid, user_name="admin", user_email=None,
        user_kind="person", account_id=account.id, account_uuid=account.uuid,
        account_name=account.name, role="admin",
        permissions=frozenset(p.value for p in Permission), credential_id=None,
        credential_kind=None, rate_limit=1000, rate_window=60, valid_until=None,
    )  # fmt: skip
