"""A real Prometheus scrapes a real gateway and worker; the series arrive with the
values the jobs produced, and every dashboard and alert expression evaluates."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import start_service
from tests.deploy.conftest import DEPLOY, need
from tests.support import images
from tests.support.services import Service, free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    binary = need("prometheus")
    tmp = tmp_path_factory.mktemp("prom")
    worker_port = free_port()
    svc = start_service(redis_url, tmp / "svc", {"IMGENHANCE_METRICS_PORT": str(worker_port)})
    config = tmp / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{DEPLOY / "prometheus" / "alerts.yml"}"]
scrape_configs:
  - job_name: imgenhance-gateway
    static_configs: [{{targets: ["127.0.0.1:{svc.port}"]}}]
  - job_name: imgenhance-worker
    static_configs: [{{targets: ["127.0.0.1:{worker_port}"]}}]
""")
    port = free_port()
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), 30, 0.2, "Prometheus to start")
        yield svc, url
    finally:
        proc.terminate()
        proc.wait(10)
        svc.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def value(url: str, expr: str) -> float | None:
    result = query(url, expr)
    return float(result[0]["value"][1]) if result else None


def test_series_arrive_with_the_right_values(stack: tuple[Service, str]) -> None:
    svc, url = stack
    with svc.client() as client:
        for _ in range(3):
            r = client.post(
                "/v1/jobs/super-resolve",
                files={"image": ("a.png", images.png(images.photo(24, 24)))},
                headers={"Prefer": "wait=30"},
            )
            assert r.status_code == 200
        assert client.post("/v1/jobs/super-resolve", files={"image": ("a.txt", b"not an image")}).status_code == 415

    def eventually(expr: str, expected: float) -> None:
        """Scrapes land every second: wait for the series to reach its value."""
        wait_until(lambda: value(url, expr) == expected, 30, 0.5, f"{expr} == {expected} (last: {value(url, expr)})")

    eventually('sum(imgenhance_worker_jobs_total{task="super-resolve",status="succeeded"})', 3.0)
    eventually('up{job="imgenhance-gateway"}', 1.0)
    eventually('up{job="imgenhance-worker"}', 1.0)
    eventually('imgenhance_http_requests_total{route="/v1/jobs/super-resolve",status="200"}', 3.0)
    eventually('imgenhance_requests_rejected_total{code="not-an-image"}', 1.0)
    eventually('sum(imgenhance_tiles_processed_total{model="sr-compact-x4"})', 3.0)
    eventually('imgenhance_workers_alive{queue="super-resolve"}', 1.0)
    eventually('imgenhance_queue_depth{queue="super-resolve"}', 0.0)
    eventually('imgenhance_job_run_seconds_count{task="super-resolve"}', 3.0)
    assert (value(url, 'imgenhance_model_load_seconds{model="sr-compact-x4"}') or 0) > 0
    assert (value(url, 'process_resident_memory_bytes{job="imgenhance-worker"}') or 0) > 10e6


def test_every_dashboard_expression_evaluates(stack: tuple[Service, str]) -> None:
    _, url = stack
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "imgenhance.json").read_text())
    exprs = [t["expr"].replace("$__rate_interval", "1m") for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 14
    for expr in exprs:
        query(url, expr)  # asserts status success: the PromQL parses and evaluates


def test_alert_rules_are_loaded_and_quiet(stack: tuple[Service, str]) -> None:
    _, url = stack
    groups = httpx.get(f"{url}/api/v1/rules").json()["data"]["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert {
        "ImgenhanceNoWorkers",
        "ImgenhanceQueueBackingUp",
        "ImgenhanceHighErrorRate",
        "ImgenhanceJobLatencySLO",
        "ImgenhanceGatewayDown",
        "ImgenhanceJobFailures",
    } <= set(rules)
    assert all(r["health"] != "err" for r in rules.values()), [r.get("lastError") for r in rules.values()]
    time.sleep(2)
    firing = [a for a in httpx.get(f"{url}/api/v1/alerts").json()["data"]["alerts"] if a["state"] == "firing"]
    assert firing == []
