"""Registry cleanup that turns a dead worker's job into a retry (or a visible failure).

RQ does this in worker maintenance every 10 minutes by default, and only in idle
workers. The gateway runs ``reap`` every few seconds too, under the same lock RQ's
maintenance takes, so the two never requeue a job twice. Workers keep the started
registry entry of a running job alive only ``liveness_ttl`` seconds at a time (see
``worker.rqworker``), so a dead worker's job is found within seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from rq.timeouts import TimerDeathPenalty

from imgenhance.jobs import SERIALIZER

log = logging.getLogger("imgenhance.reaper")


def reap(connection: Redis, queue_names: Iterable[str]) -> None:
    for name in queue_names:
        queue = Queue(name, connection=connection, serializer=SERIALIZER)
        if not queue.acquire_maintenance_lock():
            continue  # a worker's maintenance is cleaning this queue right now
        try:
            # The failure callback runs here, possibly off the main thread: SIGALRM
            # timeouts only work in the main thread, a timer works anywhere.
            StartedJobRegistry(queue=queue, death_penalty_class=TimerDeathPenalty).cleanup()
        finally:
            queue.release_maintenance_lock()
