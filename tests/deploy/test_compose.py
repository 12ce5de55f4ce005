"""docker-compose.yml, validated by docker-compose itself (no engine needed)."""

from __future__ import annotations

import os
import subprocess

import yaml

from tests.deploy.conftest import REPO, need

ENV = {"IMGENHANCE_API_KEYS": "k", "GRAFANA_ADMIN_PASSWORD": "p"}


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ENV}
    return subprocess.run(
        [need("docker-compose"), *args, "config"], cwd=REPO, env={**base, **(env or {})}, capture_output=True, text=True
    )


def rendered(*args: str) -> dict:  # type: ignore[type-arg]
    result = compose(*args, env=ENV)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)  # type: ignore[no-any-return]


def mounts(service: dict) -> dict[str, str]:  # type: ignore[type-arg]
    """target -> mode, from compose's short volume syntax (source:target:mode)."""
    return {v.split(":")[1]: v.split(":")[2] for v in service["volumes"]}


def test_required_settings_fail_fast_with_a_message() -> None:
    result = compose()
    assert result.returncode != 0 and "set IMGENHANCE_API_KEYS in .env" in result.stderr


def test_services_and_their_contracts() -> None:
    services = rendered()["services"]
    assert {"redis", "gateway", "worker", "prometheus", "grafana"} <= set(services)
    assert "--appendonly" in services["redis"]["command"] and "yes" in services["redis"]["command"]
    assert "/data" in mounts(services["redis"])
    assert "/readyz" in " ".join(services["gateway"]["healthcheck"]["test"])
    assert services["gateway"]["environment"]["IMGENHANCE_API_KEYS"] == "k"
    device = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["capabilities"] == ["gpu"] and device["device_ids"] == ["0"]
    timeout = int(services["worker"]["environment"]["IMGENHANCE_JOB_TIMEOUT_SECONDS"])
    assert services["worker"]["stop_grace_period"] == "11m" and timeout < 11 * 60
    assert mounts(services["prometheus"])["/etc/prometheus"] == "ro"
    assert mounts(services["grafana"])["/etc/grafana/provisioning"] == "ro"
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "p"


def test_second_gpu_override_and_cpu_profile() -> None:
    services = rendered("-f", "docker-compose.yml", "-f", "deploy/compose/gpu1.yml")["services"]
    assert services["worker-gpu1"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["1"]
    cpu = rendered("--profile", "cpu")["services"]["worker-cpu"]
    assert cpu["build"]["target"] == "worker-cpu" and "deploy" not in cpu


def test_prometheus_scrapes_every_worker_service_compose_can_start() -> None:
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    names = {n for job in scrape for sd in job.get("dns_sd_configs", []) for n in sd["names"]}
    workers = {
        s
        for s in rendered("-f", "docker-compose.yml", "-f", "deploy/compose/gpu1.yml", "--profile", "cpu")["services"]
        if s.startswith("worker")
    }
    assert workers <= names
