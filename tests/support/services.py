"""Real processes for end-to-end tests: a uvicorn gateway and RQ workers, each its
own process, talking to a real Redis, exactly as ``imgenhance serve`` / ``worker``
run in production."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from redis import Redis
from rq import Worker
from rq.queue import Queue

from imgenhance.jobs import SERIALIZER


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(condition, timeout: float, interval: float = 0.05, message: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {message}")


class Service:
    """One gateway and any number of workers sharing a Redis database."""

    def __init__(self, redis_url: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.redis_url = redis_url
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.connection = Redis.from_url(redis_url)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("IMGENHANCE_") and k != "REDIS_URL"},
            "REDIS_URL": redis_url,
            "IMGENHANCE_METRICS_PORT": "0",
            "PYTHONUNBUFFERED": "1",
            "IMGENHANCE_REAPER_INTERVAL_SECONDS": "1",
            **(env or {}),
        }
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.gateway: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def _spawn(self, args: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        self.logs.append(log)
        # cwd is the test's folder, so a developer's .env never leaks into a test.
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "cli", *args],
                cwd=self.workdir,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start_gateway(self) -> None:
        self.gateway = self._spawn(["serve", "--port", str(self.port)], "gateway")

        def up() -> bool:
            assert self.gateway is not None and self.gateway.poll() is None, self.tail()
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30, message="the gateway to answer /healthz")

    def live_workers(self, queue: str = "super-resolve") -> list[Worker]:
        return Worker.all(queue=Queue(queue, connection=self.connection, serializer=SERIALIZER))

    def start_worker(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        before = {w.pid for w in self.live_workers()}
        proc = self._spawn(["worker"], f"worker{len(self.workers)}", env)
        self.workers.append(proc)

        def registered() -> bool:
            assert proc.poll() is None, self.tail()
            return proc.pid in {w.pid for w in self.live_workers()} - before

        wait_until(registered, 60, message="the worker to register")
        return proc

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60, **kwargs)  # type: ignore[arg-type]

    def tail(self, lines: int = 40) -> str:
        out = []
        for log in self.logs:
            if log.exists():
                out.append(f"--- {log.name} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def stop(self) -> None:
        procs = [p for p in [self.gateway, *self.workers] if p is not None]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.connection.close()
