"""Login: ``user:pass`` parsing and a per-client throttle on failed logins (ASGI middleware)."""

from __future__ import annotations

import json
import threading
import time
from collections import deque


from ..errors import InputError


LOGIN_FAILURES, LOGIN_WINDOW_S = 5, 60.0  # wrong passwords per client before it has to wait



class LoginThrottle:
    """ASGI middleware: a client that sends ``LOGIN_FAILURES`` wrong passwords within
    ``LOGIN_WINDOW_S`` seconds gets 429 on /login until the window has passed (even with the
    right password), so passwords cannot be guessed at speed; other clients are not affected."""

    def __init__(self, app):
        self.app = app
        self.failures: dict[str, deque] = {}
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope.get("path", "").rstrip("/").endswith("/login"):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        now = time.monotonic()
        with self.lock:
            recent = self.failures.setdefault(client, deque())
            while recent and now - recent[0] > LOGIN_WINDOW_S:
                recent.popleft()
            wait = LOGIN_WINDOW_S - (now - recent[0]) if len(recent) >= LOGIN_FAILURES else 0
        if wait > 0:
            body = json.dumps({"detail": f"Too many wrong passwords; wait {int(wait) + 1} seconds and try again."}).encode()
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", str(int(wait) + 1).encode())]})
            await send({"type": "http.response.body", "body": body})
            return

        async def record(message):
            if message["type"] == "http.response.start" and message["status"] in (400, 401):
                with self.lock:
                    self.failures.setdefault(client, deque()).append(time.monotonic())
            await send(message)

        return await self.app(scope, receive, record)



def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``"user:pass"`` -> ``("user", "pass")``; empty -> None (no password)."""
    value = (value or "").strip()
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise InputError("The password setting must look like user:password (from --auth or COACH_AUTH).")
    return user, password

