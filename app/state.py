"""What the gateway holds for its lifetime: Redis connections, the catalog, the job
store, the event hub and the reaper. Built in the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from prometheus_client import REGISTRY
from redis import Redis
from starlette.concurrency import run_in_threadpool

from app.budget import ByteBudget
from app.events import EventHub
from app.metrics import QueueCollector
from app.ratelimit import RateLimiter
from app.store import JobStore
from imgenhance.catalog import Catalog
from imgenhance.reaper import reap
from imgenhance.settings import Settings

log = logging.getLogger("imgenhance.gateway")


@dataclass
class GatewayState:
    settings: Settings
    connection: Redis
    catalog: Catalog
    store: JobStore
    hub: EventHub
    collector: QueueCollector
    limiter: RateLimiter
    decode_budget: ByteBudget
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings) -> GatewayState:
        if not settings.redis_url:
            raise RuntimeError("the gateway needs a Redis URL (imgenhance serve provides one in embedded mode)")
        connection = Redis.from_url(settings.redis_url)
        catalog = Catalog.load(settings.models_dir)
        return cls(
            settings,
            connection,
            catalog,
            JobStore(connection, settings),
            EventHub(settings.redis_url),
            QueueCollector(connection, catalog.tasks()),
            RateLimiter(connection),
            ByteBudget(settings.decode_budget_bytes),
        )

    async def start(self) -> None:
        REGISTRY.register(self.collector)
        await self.hub.start()
        self.tasks.append(asyncio.create_task(self._reap_forever(), name="reaper"))

    async def close(self, timeout: float = 3.0) -> None:
        """Stop the background tasks, giving each ``timeout`` seconds: a Redis call that
        hangs must not keep the process from exiting."""
        for task in self.tasks:
            task.cancel()
        stops = [*self.tasks, asyncio.ensure_future(self.hub.stop())]
        _, pending = await asyncio.wait(stops, timeout=timeout)
        if pending:
            log.warning("shutdown: %d background task(s) did not stop in %.0fs; leaving them", len(pending), timeout)
        REGISTRY.unregister(self.collector)
        self.connection.close()

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reaper_interval_seconds)
            try:
                await run_in_threadpool(reap, self.connection, self.catalog.tasks())
            except Exception:
                log.warning("registry cleanup failed; retrying", exc_info=True)
