"""The README's first command: `imgenhance serve` with no REDIS_URL brings its own
Redis and workers and answers on the shipped models."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import images
from tests.support.services import free_port, wait_until


def test_serve_without_redis_url_is_self_contained(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGENHANCE_") and k != "REDIS_URL"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, 0.2, "embedded mode to be ready")
        r = httpx.post(
            f"{base}/v1/jobs/super-resolve",
            files={"image": ("a.png", images.png(images.photo(20, 16)))},
            headers={"Prefer": "wait=30"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert images.open_image(r.content).size == (80, 64)
        metrics = httpx.get(f"{base}/metrics").text
        # in-process workers report on the gateway's own /metrics
        assert (
            'imgenhance_worker_jobs_total{model="sr-compact-x4",status="succeeded",task="super-resolve"} 1.0' in metrics
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
