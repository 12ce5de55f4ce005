"""Worker metrics (Prometheus conventions: base units, ``_total`` counters).

A worker process serves them on ``IMGENHANCE_METRICS_PORT``; in embedded mode they
share the gateway's registry and appear on its ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

JOBS = Counter("imgenhance_worker_jobs_total", "Jobs finished by this worker", ["task", "model", "status"])
JOB_RUN_SECONDS = Histogram(
    "imgenhance_job_run_seconds",
    "Time from a worker taking a job to its result being stored",
    ["task", "model"],
    buckets=DURATION_BUCKETS,
)
JOB_QUEUE_WAIT_SECONDS = Histogram(
    "imgenhance_job_queue_wait_seconds",
    "Time a job waited in the queue before a worker took it",
    ["task"],
    buckets=DURATION_BUCKETS,
)
INFERENCE_SECONDS = Histogram(
    "imgenhance_inference_seconds",
    "Model compute time per job (all tiles), excluding decode and encode",
    ["task", "model"],
    buckets=DURATION_BUCKETS,
)
TILES = Counter("imgenhance_tiles_processed_total", "Tiles run through a model (inference count)", ["model"])
BATCHES = Counter("imgenhance_inference_batches_total", "Model executions (one per tile batch)", ["model"])
MODEL_LOAD_SECONDS = Gauge("imgenhance_model_load_seconds", "Time to load and warm up a model", ["model"])
