"""Gateway metrics. Queue depth and live workers are read from Redis at scrape time
by a collector, so they are true even when no request has arrived for a while."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imgenhance.jobs import SERIALIZER

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

HTTP_REQUESTS = Counter("imgenhance_http_requests_total", "HTTP requests", ["route", "method", "status"])
HTTP_LATENCY = Histogram(
    "imgenhance_http_request_duration_seconds", "HTTP request latency", ["route", "method"], buckets=LATENCY_BUCKETS
)
JOBS_SUBMITTED = Counter("imgenhance_jobs_submitted_total", "Jobs accepted by the gateway", ["task", "model"])
REJECTED = Counter("imgenhance_requests_rejected_total", "Requests refused, by reason (problem code)", ["code"])


class QueueCollector(Collector):
    def __init__(self, connection: Redis, queue_names: Iterable[str]) -> None:
        self.connection = connection
        self.queue_names = list(queue_names)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily("imgenhance_queue_depth", "Jobs waiting in the queue", labels=["queue"])
        running = GaugeMetricFamily("imgenhance_jobs_running", "Jobs being run by a worker", labels=["queue"])
        failed = GaugeMetricFamily(
            "imgenhance_jobs_failed_retained", "Failed jobs kept for inspection", labels=["queue"]
        )
        workers = GaugeMetricFamily("imgenhance_workers_alive", "Workers with a live heartbeat", labels=["queue"])
        oldest = GaugeMetricFamily(
            "imgenhance_queue_oldest_job_age_seconds", "Age of the job at the head of the queue", labels=["queue"]
        )
        for name in self.queue_names:
            queue = Queue(name, connection=self.connection, serializer=SERIALIZER)
            depth.add_metric([name], queue.count)
            running.add_metric([name], StartedJobRegistry(queue=queue).count)
            failed.add_metric([name], FailedJobRegistry(queue=queue).count)
            workers.add_metric([name], len(Worker.all(queue=queue)))
            head = queue.get_job_ids(0, 1)
            job = queue.fetch_job(head[0]) if head else None
            enqueued = job.enqueued_at.timestamp() if job is not None and job.enqueued_at else None
            oldest.add_metric([name], max(0.0, time.time() - enqueued) if enqueued else 0.0)
        yield from (depth, running, failed, workers, oldest)


class HttpMetrics:
    """ASGI middleware: count and time every request by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(template, scope["method"], str(status)).inc()
            HTTP_LATENCY.labels(template, scope["method"]).observe(time.perf_counter() - start)
