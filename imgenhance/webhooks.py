"""Webhooks: a job's end announced to a URL the client gave, the Standard Webhooks way.

Shared by the gateway (which checks the URL at submit) and the workers (which deliver).
A finished job with a webhook gets an entry in one sorted set, scored by when its next
attempt is due; any worker's delivery thread claims due entries with a lease (so a
worker that dies mid-delivery only delays it), POSTs the signed event, and on failure
schedules the next attempt with backoff. Every attempt is logged on the job, which the
job view shows.

SSRF: targets must resolve to public addresses (no loopback, private, link-local,
multicast or reserved ranges) unless ``webhook_allow_private`` is set. The check runs
at submit and again before each delivery, and the delivery connects to the address
that check resolved (``Target.pinned``), so a name re-pointed in between is no way in.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field
from redis import Redis

from imgenhance import REDIS_NAMESPACE as NAMESPACE

DUE = f"{NAMESPACE}:webhooks:due"
# Attempt n (from 1) that fails waits BACKOFF[n - 1] seconds before the next one.
BACKOFF = (1.0, 5.0, 30.0, 120.0, 600.0)
MAX_ATTEMPTS = len(BACKOFF) + 1
# Seconds one attempt may take in all, status line and headers included: httpx's
# timeouts bound each read, so a receiver answering a byte every few seconds would
# otherwise hold the sender, and every event behind it, for as long as it liked.
ATTEMPT_SECONDS = 30.0
# A sender claims one entry at a time, for twice what its attempt may take (the DNS
# lookup before it is not in that deadline): a claim never lapses under a live sender.
LEASE_SECONDS = 2 * ATTEMPT_SECONDS
EventType = Literal["job.succeeded", "job.failed", "job.canceled"]


class WebhookRefused(ValueError):
    """The URL may not be called (scheme, syntax, or an address it must not reach)."""


class WebhookNotResolved(WebhookRefused):
    """The host's name does not resolve: refused at submit, retried at delivery (a
    resolver's outage passes)."""


class Delivery(BaseModel):
    """One attempt, as the job view shows it."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    at: datetime
    event: EventType
    status_code: int | None = Field(None, description="the receiver's HTTP status; None if no answer")
    error: str | None = None
    delivered: bool


def log_key(job_id: str) -> str:
    return f"{NAMESPACE}:webhooks:log:{job_id}"


@dataclass(frozen=True)
class Target:
    """A checked webhook URL and the address it resolved to: deliveries connect to that
    address, so a name re-pointed after the check (DNS rebinding) cannot redirect them."""

    url: str
    host: str
    port: int
    address: str

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """(the URL with the address in place of the host, headers, httpx extensions):
        ``Host`` and the TLS server name stay the original host, so virtual hosts and
        certificate checks work as they would by name."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{literal}:{self.port}"
        default_port = 443 if parts.scheme == "https" else 80
        host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        extensions = {"sni_hostname": self.host} if parts.scheme == "https" else {}
        return urlunsplit(parts._replace(netloc=netloc)), {"host": host_header}, extensions


def check_target(url: str, allow_private: bool) -> Target:
    """The URL's target, or ``WebhookRefused`` unless it is http(s) to a host that
    resolves only to addresses a webhook may reach; ``WebhookNotResolved`` (a
    ``WebhookRefused``) when its name does not resolve now, which may pass."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # a bracketed host that is not an IPv6 address
        raise WebhookRefused(f"webhook is not a valid URL ({exc}): {url!r}") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise WebhookRefused(f"webhook must be an http or https URL with a host, not {url!r}")
    if parts.username or parts.password:
        raise WebhookRefused("webhook URLs may not carry credentials; the payload is signed instead")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookRefused(f"webhook port is not a port ({exc}): {url!r}") from exc
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise WebhookNotResolved(f"webhook host {hostname!r} does not resolve: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not address.is_global or address.is_multicast:
                raise WebhookRefused(
                    f"webhook host {hostname!r} resolves to {address}, a non-public address; "
                    "set IMGENHANCE_WEBHOOK_ALLOW_PRIVATE=true to allow internal receivers"
                )
    return Target(url, hostname, port, str(addresses[0]))


def schedule(connection: Redis, job_id: str, delay: float = 0.0) -> None:
    """Make the job's next delivery due in ``delay`` seconds."""
    connection.zadd(DUE, {job_id: time.time() + delay})


def record(connection: Redis, job_id: str, delivery: Delivery, ttl: int) -> None:
    key = log_key(job_id)
    with connection.pipeline() as pipe:
        pipe.rpush(key, delivery.model_dump_json())
        pipe.expire(key, ttl)
        pipe.execute()


def deliveries(connection: Redis, job_id: str) -> list[Delivery]:
    raw = connection.lrange(log_key(job_id), 0, -1)
    return [Delivery.model_validate(json.loads(item)) for item in raw]


# A claim: take a due entry by pushing its score a lease ahead, only if it is still due
# (two workers never deliver the same attempt).
_CLAIM = """
local score = redis.call('zscore', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  redis.call('zadd', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""


def claim_next(connection: Redis) -> str | None:
    """The job of the earliest due entry this sender could claim, or None."""
    now = time.time()
    for member in connection.zrangebyscore(DUE, "-inf", now, start=0, num=5):
        job_id = member.decode() if isinstance(member, bytes) else str(member)
        if connection.eval(_CLAIM, 1, DUE, job_id, now, now + LEASE_SECONDS):
            return job_id
    return None


def now() -> datetime:
    return datetime.now(UTC)
