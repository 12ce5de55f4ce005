"""The uploads a job carries, decoded on first use.

A pipeline asks for a picture by name (``imgenhance.params.IMAGE``, ``STYLE_IMAGE``);
in a worker the bytes come from Redis, in evaluation and the command line they are
already in memory.
"""

from __future__ import annotations

from typing import Protocol

from redis import Redis

from imgenhance.jobs import JobError, input_key
from worker.codec import Picture, decode


class Inputs(Protocol):
    def picture(self, name: str) -> Picture: ...


class RedisInputs:
    """Uploads stored by the gateway under the job's input keys."""

    def __init__(self, connection: Redis, job_id: str, ttl_seconds: int) -> None:
        self.connection, self.job_id, self.ttl_seconds = connection, job_id, ttl_seconds
        self.decoded: dict[str, Picture] = {}

    def picture(self, name: str) -> Picture:
        if name not in self.decoded:
            data = self.connection.get(input_key(self.job_id, name))
            if not isinstance(data, bytes):
                raise JobError(
                    f"the upload {name!r} expired before a worker took the job (inputs live {self.ttl_seconds} s)"
                )
            self.decoded[name] = decode(data)
        return self.decoded[name]


class LocalInputs:
    """Pictures already in memory."""

    def __init__(self, **pictures: Picture) -> None:
        self.pictures = pictures

    def picture(self, name: str) -> Picture:
        if name not in self.pictures:
            raise JobError(f"this job needs an upload named {name!r}")
        return self.pictures[name]
