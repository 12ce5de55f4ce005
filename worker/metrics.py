"""Worker metrics (Prometheus conventions: base units, ``_total`` counters).

A worker process serves them on ``IMGENHANCE_METRICS_PORT``; in embedded mode they
share the gateway's registry and appear on its ``/metrics``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("imgenhance.worker")

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


class GpuCollector(Collector):
    """GPU memory and utilisation from NVML (nvidia-ml-py), read at scrape time. On a
    host without an NVIDIA driver it reports nothing."""

    def __init__(self) -> None:
        self.nvml: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.count = pynvml.nvmlDeviceGetCount()
        except Exception as exc:  # no library, no driver, no GPU
            log.info("GPU metrics off: %s", exc)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self.nvml is None:
            return
        used = GaugeMetricFamily("imgenhance_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu", "name"])
        total = GaugeMetricFamily("imgenhance_gpu_memory_total_bytes", "GPU memory size", labels=["gpu", "name"])
        util = GaugeMetricFamily(
            "imgenhance_gpu_utilization_ratio", "GPU busy share of the last sample period", labels=["gpu", "name"]
        )
        for i in range(self.count):
            handle = self.nvml.nvmlDeviceGetHandleByIndex(i)
            name = str(self.nvml.nvmlDeviceGetName(handle))
            memory = self.nvml.nvmlDeviceGetMemoryInfo(handle)
            used.add_metric([str(i), name], memory.used)
            total.add_metric([str(i), name], memory.total)
            util.add_metric([str(i), name], self.nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0)
        yield from (used, total, util)


def register_gpu_collector() -> None:
    REGISTRY.register(GpuCollector())
