"""Pure ASGI middleware: request id, body-size limit, rate-limit headers, one access-log line."""

import logging
import re
import time
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landmark.core.errors import PayloadTooLarge
from landmark.core.request_context import set_request_id

access_log = logging.getLogger("landmark.access")
log = logging.getLogger("landmark.errors")
VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestMiddleware:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, larger_bodies: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.larger_bodies = larger_bodies or {}  # exact paths allowed a larger limit (imports)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if VALID_ID.match(incoming) else uuid.uuid4().hex
        set_request_id(request_id)
        state: dict[str, Any] = scope.setdefault("state", {})
        started = time.perf_counter()
        status = 0
        too_large = False
        seen = 0
        max_bytes = self.larger_bodies.get(scope["path"], self.max_body_bytes)

        async def reply(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode())]
                extra += [
                    (k.lower().encode(), v.encode())
                    for k, v in state.get("quota_headers", {}).items()
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        async def answer(error: Exception) -> None:
            from landmark.api.errors import internal_error, render

            response = (
                render(scope["path"], error)
                if isinstance(error, PayloadTooLarge)
                else internal_error(scope["path"])
            )
            await response(scope, receive, reply)

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    too_large = True
                    raise ClientDisconnect()  # stops the app reading; the 413 is sent below
            return message

        async def app_send(message: Message) -> None:
            if not too_large:  # once the body overflowed, the app's own answer is dropped
                await reply(message)

        declared = headers.get("content-length", "")
        try:
            if declared.isdigit() and int(declared) > max_bytes:
                too_large = True
            else:
                await self.app(scope, limited_receive, app_send)
        except Exception:
            if not too_large:
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not status:
                await answer(self._too_large(max_bytes) if too_large else RuntimeError())
        else:
            if too_large and not status:
                await answer(self._too_large(max_bytes))
        access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],  # never the query string: it may carry a secret
                "status": status or 500,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "account": state.get("account_id"),
                "credential": state.get("credential_id"),
            },
        )

    def _too_large(self, max_bytes: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request body larger than {max_bytes} bytes")
