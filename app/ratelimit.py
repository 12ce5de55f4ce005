"""Per-key request rates, counted in Redis so every gateway replica shares them.

A fixed one-minute window per key: one ``INCR`` and one ``EXPIRE`` per request, and
a client learns where it stands from the ``RateLimit-*`` headers on every answer
(IETF draft "RateLimit header fields for HTTP": limit, remaining, seconds to reset).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import RateLimited
from imgenhance.jobs import NAMESPACE
from imgenhance.settings import KeyLimits

ANONYMOUS = "anonymous"
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the API key's name (never the key) and its limits."""

    name: str
    limits: KeyLimits


@dataclass(frozen=True)
class RateStatus:
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimiter:
    def __init__(self, connection: Redis) -> None:
        self.connection = connection

    def hit(self, caller: Caller) -> RateStatus | None:
        """Count one request; raise ``RateLimited`` (429) past the key's limit."""
        limit = caller.limits.requests_per_minute
        if not limit:
            return None
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"{NAMESPACE}:rate:{caller.name}:{window}"
        with self.connection.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS * 2)
            count = int(pipe.execute()[0])
        status = RateStatus(limit, max(0, limit - count), max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999)))
        if count > limit:
            raise RateLimited(
                f"key {caller.name!r} may make {limit} requests a minute; try again in {status.reset_seconds} s",
                headers={"Retry-After": str(status.reset_seconds), **status.headers()},
            )
        return status


class RateLimitHeaders:
    """Adds the ``RateLimit-*`` headers that the caller dependency left in the request state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = scope.get("state", {}).get("ratelimit")
                if isinstance(status, RateStatus):
                    headers = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    for name, value in status.headers().items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
