"""Webhook targets: what is refused, and deliveries pinned to the address that was checked."""

from __future__ import annotations

import socket

import pytest

from imgenhance.webhooks import Target, WebhookNotResolved, WebhookRefused, check_target


@pytest.mark.parametrize(
    "url",
    ["http://localhost/", "http://127.0.0.1:9/x", "http://[::1]/", "http://10.0.0.1/", "http://169.254.169.254/"],
)
def test_non_public_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(WebhookRefused, match="non-public"):
        check_target(url, allow_private=False)
    assert check_target(url, allow_private=True).address


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "http:///path",
        "http://u:p@example.com/",
        "not a url",
        "http://[::1/",  # urlsplit raises ValueError: a 500 at submit before
        "http://[x]/",
        "http://example.com:99999/",
    ],
)
def test_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(WebhookRefused):
        check_target(url, allow_private=True)


def test_a_delivery_connects_to_the_checked_address_by_its_original_name() -> None:
    url, headers, extensions = check_target("http://localhost:8080/hook?a=1", allow_private=True).pinned()
    assert url in ("http://127.0.0.1:8080/hook?a=1", "http://[::1]:8080/hook?a=1")
    assert headers == {"host": "localhost:8080"} and extensions == {}


def test_https_keeps_the_name_for_the_certificate_and_brackets_ipv6() -> None:
    target = Target("https://hooks.example.com/in", "hooks.example.com", 443, "2001:db8::7")
    url, headers, extensions = target.pinned()
    assert url == "https://[2001:db8::7]:443/in"
    assert headers == {"host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}


def test_a_name_that_does_not_resolve_now_is_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused at submit like any other, but the sender retries it: a resolver outage passes."""

    def outage(*_: object, **__: object) -> None:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", outage)
    with pytest.raises(WebhookNotResolved, match="does not resolve"):
        check_target("https://hooks.example.com/x", allow_private=False)
