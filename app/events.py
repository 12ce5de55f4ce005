"""Wake waiting requests when their job changes, over one Redis subscription.

Workers publish on ``imgenhance:events:<job id>``. The hub holds a single pattern
subscription for all jobs and sets an ``asyncio.Event`` per waiting job id, so a
thousand ``Prefer: wait`` requests cost one Redis connection, not a thousand.
Events are a fast path only: waiters also re-read the job every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from imgenhance.jobs import events_channel

log = logging.getLogger("imgenhance.gateway")


class EventHub:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._listen(), name="event-hub")

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def _listen(self) -> None:
        pattern = events_channel("*")
        prefix_len = len(events_channel(""))
        while True:
            client = aioredis.Redis.from_url(self.redis_url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(pattern)
                    async for message in pubsub.listen():
                        if message["type"] != "pmessage":
                            continue
                        job_id = message["channel"].decode()[prefix_len:]
                        for event in self.waiters.get(job_id, ()):
                            event.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("event subscription lost; waiters poll until it is back", exc_info=True)
                await asyncio.sleep(1.0)
            finally:
                await client.aclose()

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        event = asyncio.Event()
        self.waiters[job_id].add(event)
        try:
            yield event
        finally:
            self.waiters[job_id].discard(event)
            if not self.waiters[job_id]:
                del self.waiters[job_id]
