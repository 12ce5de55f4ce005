"""What the gateway holds for its lifetime: Redis connections, the catalog, the job
store, the event hub and the reaper. Built in the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from prometheus_client import REGISTRY
from redis import Redis
from starlette.concurrency import run_in_threadpool

from app.events import EventHub
from app.metrics import QueueCollector
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
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings) -> GatewayState:
        assert settings.redis_url, "the gateway needs a Redis URL (imgenhance serve provides one in embedded mode)"
        connection = Redis.from_url(settings.redis_url)
        catalog = Catalog.load(settings.models_dir)
        return cls(
            settings,
            connection,
            catalog,
            JobStore(connection, settings),
            EventHub(settings.redis_url),
            QueueCollector(connection, catalog.tasks()),
        )

    async def start(self) -> None:
        REGISTRY.register(self.collector)
        await self.hub.start()
        self.tasks.append(asyncio.create_task(self._reap_forever(), name="reaper"))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.hub.stop()
        REGISTRY.unregister(self.collector)
        self.connection.close()

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reaper_interval_seconds)
            try:
                await run_in_threadpool(reap, self.connection, self.catalog.tasks())
            except Exception:
                log.warning("registry cleanup failed; retrying", exc_info=True)
