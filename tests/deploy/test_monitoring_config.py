"""Prometheus config, alert rules and their unit tests (promtool), the Grafana
dashboard, and that every metric they use is one the code exports."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from tests.deploy.conftest import DEPLOY, REPO, need

PROM = DEPLOY / "prometheus"


def promtool(*args: str) -> None:
    result = subprocess.run([need("promtool"), *args], cwd=PROM, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_config_rules_and_alert_unit_tests() -> None:
    promtool("check", "config", "prometheus.yml")
    promtool("check", "rules", "alerts.yml")
    promtool("test", "rules", "alerts_test.yml")


def test_every_alert_is_documented_with_what_to_do() -> None:
    operations = (REPO / "docs" / "operations.md").read_text()
    for group in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] in operations, f"{rule['alert']} is not explained in docs/operations.md"
            assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("warning", "critical")


def test_grafana_provisioning_and_dashboard() -> None:
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "imgenhance.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("per second", "latency", "queue depth", "error rate", "gpu memory", "per job, by model"):
        assert topic in titles, topic
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid and panel["targets"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def exported_metrics() -> set[str]:
    names: set[str] = set()
    for path in [*REPO.glob("app/**/*.py"), *REPO.glob("worker/**/*.py"), *REPO.glob("imgenhance/**/*.py")]:
        names |= set(re.findall(r'"(imgenhance_[a-z_]+)"', path.read_text()))
    return names


def used_metrics() -> set[str]:
    text = (PROM / "alerts.yml").read_text() + (DEPLOY / "grafana" / "dashboards" / "imgenhance.json").read_text()
    text += (DEPLOY / "k8s" / "keda.yaml").read_text()
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"imgenhance_[a-z_]+", text)}


def test_dashboards_and_alerts_use_only_metrics_the_code_exports() -> None:
    missing = used_metrics() - exported_metrics()
    assert not missing, f"not exported by the code: {sorted(missing)}"
