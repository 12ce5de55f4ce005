"""Webhooks (signed, retried, logged on the job, SSRF-safe) and Idempotency-Key, against
a real gateway and worker, with a real HTTP receiver on a local port."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support import images
from tests.support.services import Service, wait_until

pytestmark = pytest.mark.slow

SECRET = "whsec_" + base64.b64encode(b"imgenhance-test-secret-32-bytes!").decode()


class Receiver:
    """Answers 503 to the first ``failures`` deliveries, then 204; keeps what it got."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                status = 503 if len(receiver.received) < receiver.failures else 204
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.close()


def image() -> dict[str, tuple[str, bytes]]:
    return {"image": ("a.png", images.png(images.photo(16, 16)))}


def test_a_finished_job_is_announced_signed_and_retried_until_delivered(make_service, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(env={"IMGENHANCE_WEBHOOK_SECRET": SECRET, "IMGENHANCE_WEBHOOK_ALLOW_PRIVATE": "true"})
    with svc.client() as client:
        r = client.post("/v1/jobs/super-resolve", files=image(), data={"scale": "2", "webhook": receiver.url})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        wait_until(lambda: any(status == 204 for *_, status in receiver.received), 60, 0.1, "a delivered webhook")
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert [status for *_, status in receiver.received] == [503, 503, 204]
    headers, body, _ = receiver.received[-1]
    event = Webhook(SECRET).verify(body, headers)  # raises if the signature is wrong
    assert event["type"] == "job.succeeded" and event["data"]["id"] == job_id
    assert event["data"]["links"]["result"] == f"/v1/jobs/{job_id}/result"
    assert len({h["webhook-id"] for h, *_ in receiver.received}) == 1  # one event, retried
    deliveries = job["webhook"]["deliveries"]
    assert [d["status_code"] for d in deliveries] == [503, 503, 204]
    assert [d["delivered"] for d in deliveries] == [False, False, True] and deliveries[0]["attempt"] == 1
    with pytest.raises(Exception):  # noqa: B017 (the library raises its own verification error)
        Webhook(SECRET).verify(body.replace(b"succeeded", b"failed"), headers)


def test_webhooks_to_internal_addresses_or_without_a_secret_are_refused(make_service) -> None:  # type: ignore[no-untyped-def]
    svc: Service = make_service(env={"IMGENHANCE_WEBHOOK_SECRET": SECRET})
    bare: Service = make_service(workers=0)
    with svc.client() as client:
        for url in [
            "http://127.0.0.1:9/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://localhost/",
            "ftp://example.com/",
            "http://user:pw@example.com/",
        ]:
            r = client.post("/v1/jobs/super-resolve", files=image(), data={"webhook": url})
            assert r.status_code == 422, (url, r.text)
            assert r.json()["field"] == "webhook"
        gen = client.post("/v1/jobs/generate", json={"webhook": "http://127.0.0.1/"})
        assert gen.status_code == 422 and "non-public" in gen.json()["detail"]
    with bare.client() as client:
        r = client.post("/v1/jobs/super-resolve", files=image(), data={"webhook": "https://example.com/"})
    assert r.status_code == 422 and "IMGENHANCE_WEBHOOK_SECRET" in r.json()["detail"]


def test_idempotency_key_makes_a_retried_submit_return_the_first_job(make_service) -> None:  # type: ignore[no-untyped-def]
    env = {"IMGENHANCE_WEBHOOK_SECRET": SECRET, "IMGENHANCE_WEBHOOK_ALLOW_PRIVATE": "true"}
    svc: Service = make_service(workers=0, env=env)
    body = image()
    with svc.client() as client:
        first = client.post("/v1/jobs/super-resolve", files=body, headers={"Idempotency-Key": "k-1"})
        rehooked = client.post(
            "/v1/jobs/super-resolve",
            files=body,
            data={"webhook": "http://127.0.0.1:9/h"},
            headers={"Idempotency-Key": "k-1"},
        )
        again = client.post("/v1/jobs/super-resolve", files=body, headers={"Idempotency-Key": "k-1"})
        other = client.post("/v1/jobs/super-resolve", files=body, headers={"Idempotency-Key": "k-2"})
        changed = client.post(
            "/v1/jobs/super-resolve", files=body, data={"scale": "2"}, headers={"Idempotency-Key": "k-1"}
        )
        gen = [client.post("/v1/jobs/generate", json={"seed": 3}, headers={"Idempotency-Key": "g"}) for _ in range(2)]
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert other.json()["id"] != first.json()["id"]
    assert changed.status_code == 422 and "different request" in changed.json()["detail"]
    assert rehooked.status_code == 422, rehooked.text  # the replay would keep the first job's webhook
    assert gen[0].status_code == gen[1].status_code == 202, gen[1].text
    assert gen[0].json()["id"] == gen[1].json()["id"]
    assert svc.connection.llen("rq:queue:super-resolve") == 2 and svc.connection.llen("rq:queue:generate") == 1
