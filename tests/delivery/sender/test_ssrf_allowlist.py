"""WEBHOOK_SSRF_ALLOWLIST: the guard stays on and lets through exactly the
listed networks (any port) or address:port pairs (the bench's sink)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from delivery.sender.http import send
from delivery.sender.ssrf import BlockedDestination, validate_destination
from delivery.sender.types import OutboundRequest
from webhooks_project import conf


@pytest.fixture
def local_port(receiver) -> int:
    """The port of a local receiver (tests/support/receiver.py) answering 200."""
    return receiver.port


def _allow(settings, text: str) -> None:
    settings.WEBHOOK_SSRF_ALLOWLIST = conf.parse_address_allowlist(text)


@pytest.mark.ssrf_guard
def test_an_allowlisted_address_and_port_is_delivered_to(settings, local_port):
    _allow(settings, f"127.0.0.1:{local_port}")
    url = f"http://127.0.0.1:{local_port}/hooks"

    validate_destination(url)
    result = send(OutboundRequest(url=url, body=b"{}"))

    assert result.status_code == 200, result.error


@pytest.mark.ssrf_guard
def test_the_same_address_on_another_port_stays_blocked(settings, local_port):
    _allow(settings, f"127.0.0.1:{local_port + 1}")
    url = f"http://127.0.0.1:{local_port}/hooks"

    with pytest.raises(BlockedDestination, match="loopback"):
        validate_destination(url)
    result = send(OutboundRequest(url=url, body=b"{}"))
    assert result.status_code is None
    assert result.error.startswith("blocked destination: ")


@pytest.mark.ssrf_guard
def test_a_network_allows_any_port_and_nothing_outside_it(settings):
    _allow(settings, "10.20.0.0/16, [fd00::1]:8443")

    validate_destination("http://10.20.3.4:1234/")
    validate_destination("https://[fd00::1]:8443/")
    for url, reason in (
        ("http://10.21.0.1/", "private"),
        ("http://127.0.0.1/", "loopback"),
        ("https://[fd00::1]:443/", "private"),
        ("http://169.254.169.254/", "cloud metadata"),
    ):
        with pytest.raises(BlockedDestination, match=reason):
            validate_destination(url)


@pytest.mark.ssrf_guard
def test_it_is_off_by_default(settings):
    assert settings.WEBHOOK_SSRF_ALLOWLIST == ()
    with pytest.raises(BlockedDestination):
        validate_destination("http://127.0.0.1:9000/")


@pytest.mark.parametrize(
    "text", ["10.0.0.1/8", "127.0.0.1:0", "127.0.0.1:70000", "sink:9000", "[::1]x"]
)
def test_a_malformed_entry_fails_the_start_up(text):
    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_SSRF_ALLOWLIST"):
        conf.read(
            {"WEBHOOK_SSRF_ALLOWLIST": text},
            "WEBHOOK_SSRF_ALLOWLIST",
            "",
            conf.parse_address_allowlist,
        )
