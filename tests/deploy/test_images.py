"""The Dockerfile: hadolint clean, and the rules we care about checked directly."""

from __future__ import annotations

import re
import subprocess
import tomllib

from tests.deploy.conftest import REPO, need

DOCKERFILE = (REPO / "Dockerfile").read_text()
EXTRAS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def stages() -> dict[str, str]:
    """Stage name -> its instructions (the text until the next FROM)."""
    parts = re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]
    return {re.search(r" AS (\S+)", p.splitlines()[0]).group(1): p for p in parts}  # type: ignore[union-attr]


def installed_requirements(stage: str) -> list[str]:
    """What `pip install` in a stage asks for, resolved through pyproject's extras."""
    reqs = []
    for spec in re.findall(r"pip install [^\n]*?'?\.(\[[\w,-]+\])?'?\s*$", stages()[stage], flags=re.M):
        reqs += EXTRAS["dependencies"]
        for extra in spec.strip("[]").split(",") if spec else []:
            reqs += EXTRAS["optional-dependencies"][extra]
    return [r.split("==")[0].lower() for r in reqs]


def test_hadolint_is_clean() -> None:
    result = subprocess.run([need("hadolint"), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_target_exists_runs_as_a_numeric_non_root_user_and_has_a_healthcheck() -> None:
    for name in ("gateway", "worker-cpu", "worker-gpu"):
        text = stages()[name]
        user = re.findall(r"^USER (\S+)", text, flags=re.M)
        assert user and re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", user[-1]), f"{name}: USER {user}"
        assert "HEALTHCHECK" in text and re.search(r"^CMD \[", text, flags=re.M), name


def test_base_images_are_pinned_by_tag() -> None:
    bases = re.findall(r"^ARG \w+_IMAGE=(\S+)", DOCKERFILE, flags=re.M)
    assert bases and all(re.search(r":\d+\.\d+\.\d+", b) and "latest" not in b for b in bases), bases


def test_serving_images_carry_no_torch_and_the_gateway_no_onnxruntime() -> None:
    gateway = installed_requirements("gateway")
    assert gateway and not {"torch", "onnxruntime", "onnxruntime-gpu", "numpy"} & set(gateway)
    for worker, runtime in (("worker-cpu", "onnxruntime"), ("worker-gpu", "onnxruntime-gpu")):
        reqs = installed_requirements(worker)
        assert runtime in reqs and "torch" not in reqs, (worker, reqs)
    assert "onnxruntime" not in installed_requirements("worker-gpu")  # never both builds in one env


def test_constraints_pin_every_serving_requirement() -> None:
    pins = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for stage in ("gateway", "worker-cpu", "worker-gpu"):
        for req in installed_requirements(stage):
            assert req.replace("_", "-").split("[")[0] in pins, f"{req} ({stage}) is not in constraints.txt"
