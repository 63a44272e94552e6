"""Pure ASGI middleware: request id, body-size limit, rate-limit headers, one access-log line."""

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landmark.core.errors import PayloadTooLarge
from landmark.core.request_context import set_request_id

access_log = logging.getLogger("landmark.access")
log = logging.getLogger("landmark.errors")
VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

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

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode())]
                extra += [(k.lower().encode(), v.encode()) for k, v in state.get("quota_headers", {}).items()]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            from landmark.api.errors import render

            response = render(scope["path"], self._too_large())
            await response(scope, receive, send_with_headers)
        else:
            try:
                await self.app(scope, self._limited(receive), send_with_headers)
            except Exception:
                # Starlette re-raises what no handler took; answer in the API's dialect, no trace.
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                if not status:  # nothing was sent yet
                    from landmark.api.errors import internal_error

                    await internal_error(scope["path"])(scope, receive, send_with_headers)
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

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request body larger than {self.max_body_bytes} bytes")

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise self._too_large()
            return message

        return counting_receive
