"""Starting workers: ``imgenhance worker`` (one process, deployment mode) and the
in-process workers of embedded mode, both built by ``build_worker``."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from prometheus_client import start_http_server
from redis import Redis, RedisError
from rq.queue import Queue

from imgenhance.catalog import Catalog
from imgenhance.jobs import SERIALIZER, cancel_key
from imgenhance.settings import Settings
from worker import context, metrics
from worker.rqworker import InferenceWorker
from worker.runtime import Runtime
from worker.webhooks import WebhookSender

log = logging.getLogger("imgenhance.worker")


def build_runtime(settings: Settings, connection: Redis) -> Catalog:
    """Load every model once and make it available to job functions in this process,
    with GPU metrics beside the worker metrics."""
    catalog = Catalog.load(settings.models_dir)
    if not len(catalog):
        raise RuntimeError(f"no model cards in {settings.models_dir}: nothing to serve")
    context.install(context.WorkerContext(settings, Runtime(catalog, settings), connection))
    metrics.register_gpu_collector()
    return catalog


def build_worker(settings: Settings, connection: Redis, catalog: Catalog, in_thread: bool = False) -> InferenceWorker:
    queues = [Queue(task, connection=connection, serializer=SERIALIZER) for task in catalog.tasks()]
    name = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    return InferenceWorker(
        queues,
        connection=connection,
        serializer=SERIALIZER,
        name=name,
        liveness_ttl=settings.liveness_ttl_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        # The gateway's reaper cleans registries every few seconds; this is the fallback.
        maintenance_interval=60,
        in_thread=in_thread,
    )


def run(settings: Settings) -> None:
    """Deployment mode: one worker in this process's main thread, until SIGTERM."""
    if not settings.redis_url:
        raise SystemExit("imgenhance worker needs REDIS_URL (embedded mode runs workers inside `serve`)")
    connection = Redis.from_url(settings.redis_url)
    catalog = build_runtime(settings, connection)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
        log.info("worker metrics on :%d/metrics", settings.metrics_port)
    sender = start_webhook_sender(settings, connection)
    try:
        build_worker(settings, connection, catalog).work(logging_level="INFO")
    finally:
        if sender:
            sender.stop()


def start_webhook_sender(settings: Settings, connection: Redis) -> WebhookSender | None:
    """Every worker process delivers webhooks when the service has a signing secret."""
    if not settings.webhook_secret:
        return None
    sender = WebhookSender(settings, connection)
    sender.start()
    return sender


class EmbeddedWorkers:
    """Workers on threads of the serving process, sharing one set of loaded models."""

    def __init__(self, settings: Settings, connection: Redis) -> None:
        self.settings, self.connection = settings, connection
        self.sender: WebhookSender | None = None
        catalog = build_runtime(settings, connection)
        self.workers = [
            build_worker(settings, connection, catalog, in_thread=True) for _ in range(settings.embedded_workers)
        ]
        self.threads = [
            threading.Thread(target=w.work, kwargs={"logging_level": "INFO"}, name=f"worker-{i}", daemon=True)
            for i, w in enumerate(self.workers)
        ]

    def start(self) -> None:
        self.sender = start_webhook_sender(self.settings, self.connection)
        for t in self.threads:
            t.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop at once: the embedded Redis, and every job in it, goes with the process, so
        a running job is canceled (at its next tile) rather than waited for."""
        for w in self.workers:
            w.stop_after_current_job()
            try:
                job_id = w.get_current_job_id()
                if job_id:
                    log.info("stopping: canceling job %s (embedded jobs end with the process)", job_id)
                    w.connection.set(cancel_key(job_id), 1, ex=60)
            except RedisError:
                pass
        for t in self.threads:
            t.join(timeout)
        if self.sender:
            self.sender.stop()
