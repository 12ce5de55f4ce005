"""Schema fuzzing: schemathesis generates requests for every operation in the live
``/openapi.json`` and sends them to a real gateway (with one real worker and a real
Redis). Every answer must be no 5xx, and a status, content type and body that the
schema documents for that operation: the schema must tell the truth.

Per operation, Hypothesis draws ``MAX_EXAMPLES`` cases from schemathesis's positive
(valid by the schema) and negative (invalid) strategies, derandomized, so a run is
repeatable. Fields, path parameters and headers that the API looks things up by
(``image``, ``model``, ``style``, ``job_id``, ``Prefer``...) sometimes get real values
(``prepare``), so accepted jobs, finished results, model cards and conflicts are
checked too, not only refusals. ``Prefer: wait=N`` is cut to ``MAX_WAIT`` seconds, so
a fuzzed header never holds the run. All the distinct failures of an operation are
reported together, each with a curl command and the answer's body.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from tests.support import images
from tests.support.services import Service

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class KnownGap:
    """An answer the schema does not document yet (its status, or the media type of a
    documented status), from a file this test does not own: tolerated for this
    operation and status only, until the schema documents it."""

    status: int
    missing: Literal["status", "media type"]
    reason: str
    example: str  # a request path that gets this answer today


# "METHOD /path" -> the one answer it may give undocumented. Strict: the last test
# fails once the schema documents it, so that a fixed entry is removed from here.
KNOWN_GAPS: dict[str, KnownGap] = {}

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 50  # per operation: 16 operations, about 25 s on 2 cores (30 s with the service start)
MAX_WAIT = 0.25  # seconds: any Prefer: wait=N the fuzzer writes is cut to this
SEED = 20261123
OPERATIONS = [f"{method.upper()} {path}" for path, item in create_app().openapi()["paths"].items() for method in item]
_WAIT = re.compile(r"(wait\s*=\s*)(\d+(?:\.\d+)?)", re.IGNORECASE)

# Small valid uploads in common formats and modes (a job on one takes milliseconds).
SAMPLES: list[Any] = [
    images.png(images.photo(12, 10)),
    images.jpeg(images.photo(16, 16, seed=1)),
    images.webp(images.rgba_disc(8, 8)),
    images.png(images.gray16(8, 6)),
    images.png(np.full((9, 7), 128, np.uint8)),
]


def clamp_wait(value: str) -> str:
    return _WAIT.sub(lambda m: f"{m.group(1)}{min(float(m.group(2)), MAX_WAIT):g}", value)


def prepare(case: schemathesis.Case, data: st.DataObject, real: dict[str, list[Any]]) -> None:
    """Sometimes put a real value (an image, a model id, a style name, a job id, a
    ``Prefer: wait``) in a body field, path parameter or header of that name, present
    or not; a body given one also loses some or all of its other fields, whose
    defaults are valid, so that some jobs are accepted and run. Then cut any
    ``Prefer: wait=N`` to ``MAX_WAIT``."""
    if case.headers is None:
        case.headers = {}
    for name in [parameter.name for parameter in case.operation.headers if parameter.name in real]:
        if data.draw(st.booleans(), label=f"a real {name}"):
            case.headers[name] = data.draw(st.sampled_from(real[name]), label=name)
    for name in list(case.headers):
        if name.lower() == "prefer" and isinstance(case.headers[name], str):
            case.headers[name] = clamp_wait(case.headers[name])
    path_parameters: Any = case.path_parameters or {}
    for name in [name for name in path_parameters if name in real]:
        if data.draw(st.booleans(), label=f"a real {name}"):
            path_parameters[name] = data.draw(st.sampled_from(real[name]), label=name)
    if not isinstance(case.body, dict):
        return
    fields = {name for body in case.operation.body for name in (body.resolved_schema or {}).get("properties", {})}
    chosen = [name for name in sorted(fields & real.keys()) if data.draw(st.booleans(), label=f"a real {name}")]
    for name in chosen:
        case.body[name] = data.draw(st.sampled_from(real[name]), label=name)
    if chosen:
        drop_all = data.draw(st.booleans(), label="drop every other field")
        for name in [name for name in case.body if name not in chosen]:
            if drop_all or data.draw(st.booleans(), label=f"drop {name}"):
                del case.body[name]


def undocumented_media_type(schema: schemathesis.BaseSchema, label: str, status: int, content_type: str) -> str | None:
    """A body under a documented status whose response names no media type at all:
    schemathesis's content_type_conformance lets that pass, this does not."""
    method, path = label.split(" ", 1)
    responses = schema.raw_schema["paths"][path][method.lower()]["responses"]
    documented = responses.get(str(status), responses.get("default"))
    if documented is None or documented.get("content"):
        return None
    return f"{status} documents no media type; the answer is {content_type or 'untyped'}"


@dataclass
class Findings:
    """The distinct failures of one operation: (status, failure titles) -> a report."""

    label: str
    seen: dict[tuple[int, tuple[str, ...]], str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)

    def add(self, case: schemathesis.Case, status: int, body: str, failures: list[tuple[str, str]]) -> None:
        """Record (title, message) failures, once per status and set of titles."""
        titles = tuple(sorted({title for title, _ in failures}))
        self.seen.setdefault(
            (status, titles),
            f"{self.label} -> {status}: {'; '.join(titles)}\n"
            + "\n".join(f"  {message}" for _, message in failures if message)
            + f"\n  request: {case.as_curl_command()}\n  body: {body[:400]}",
        )

    def report(self) -> str:
        return f"{len(self.seen)} finding(s) in {self.summary()}:\n\n" + "\n\n".join(self.seen.values())

    def summary(self) -> str:
        return f"{self.statuses.total()} cases, by status {dict(sorted(self.statuses.items()))}"


@pytest.fixture(scope="module")
def live_schema(service: Service) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict({"seed": SEED, "generation": {"deterministic": True}})
    return schemathesis.openapi.from_url(f"{service.base_url}/openapi.json", config=config)


@pytest.fixture(scope="module")
def job_ids(service: Service) -> list[str]:
    """Real jobs: one finished (its result readable), one canceled while queued or
    running (1024 frames: it is still going when the cancel arrives)."""
    with service.client() as client:
        done = client.post(
            "/v1/jobs/super-resolve",
            files={"image": ("a.png", SAMPLES[0])},
            data={"scale": "2"},
            headers={"Prefer": "wait=60"},
        )
        assert done.status_code == 200, done.text
        canceled = client.post(
            "/v1/jobs/generate", json={"n": 64, "seed": 3, "interpolate": {"to_seed": 4, "steps": 16}}
        )
        assert canceled.status_code == 202, canceled.text
        assert client.delete(canceled.headers["Location"]).status_code in (200, 202)
    return [done.headers["X-Job-Id"], canceled.json()["id"]]


@pytest.fixture(scope="module")
def real_values(service: Service, job_ids: list[str]) -> dict[str, list[Any]]:
    """Values the API looks up, by the field or path parameter names that take them."""
    with service.client() as client:
        models = [card["id"] for card in client.get("/v1/models").json()["models"]]
        styles = [style["name"] for style in client.get("/v1/styles").json()["styles"]]
    return {
        "image": SAMPLES,
        "style_image": SAMPLES,
        "model": models,
        "model_id": models,
        "style": styles,
        "name": styles,
        "job_id": job_ids,
        "prefer": [f"wait={MAX_WAIT}", f"respond-async, wait={MAX_WAIT}", "wait=0"],
    }


def test_the_live_schema_has_the_operations_collected(live_schema: schemathesis.BaseSchema) -> None:
    live = [result.ok().label for result in live_schema.get_all_operations()]
    assert sorted(live) == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_is_documented(
    live_schema: schemathesis.BaseSchema, real_values: dict[str, list[Any]], label: str
) -> None:
    operation = live_schema.find_operation_by_label(label)
    assert operation is not None, label
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    gap = KNOWN_GAPS.get(label)
    findings = Findings(label)

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # every failure is collected below: nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, data=st.data())
    def send(case: schemathesis.Case, data: st.DataObject) -> None:
        prepare(case, data, real_values)
        response = case.call(timeout=30)
        findings.statuses[response.status_code] += 1
        tolerated = gap.missing if gap is not None and response.status_code == gap.status else None
        checks = [check for check in CHECKS if not (tolerated == "status" and check is status_code_conformance)]
        failures: list[tuple[str, str]] = []
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            failures += [(failure.title, failure.message) for failure in group.exceptions]
        if response.content and tolerated != "media type":
            content_type = response.headers.get("content-type", [""])[0]
            missing = undocumented_media_type(live_schema, label, response.status_code, content_type)
            if missing:
                failures.append(("Undocumented Content-Type", missing))
        if failures:
            findings.add(case, response.status_code, response.text, failures)

    send()
    print(f"{label}: {findings.summary()}")  # shown with -s, or on failure
    assert not findings.seen, findings.report()


def test_known_gaps_are_still_gaps(service: Service) -> None:
    """Each KNOWN_GAPS entry still answers its status undocumented; remove it once fixed."""
    with service.client() as client:
        paths: dict[str, Any] = client.get("/openapi.json").json()["paths"]
        for label, gap in KNOWN_GAPS.items():
            method, template = label.split(" ", 1)
            answer = client.request(method, gap.example)
            assert answer.status_code == gap.status, (label, answer.status_code, answer.text)
            documented = paths[template][method.lower()]["responses"]
            if gap.missing == "status":
                assert answer.headers["content-type"] == "application/problem+json", (label, answer.headers)
                assert str(gap.status) not in documented, f"{label} now documents {gap.status}: remove its gap"
            else:
                named = documented[str(gap.status)].get("content")
                assert not named, f"{label} now names its media type ({named}): remove its gap"
