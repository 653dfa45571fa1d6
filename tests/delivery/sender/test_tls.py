"""TLS to receivers: verified by default, against the host name (SNI and the
certificate's names) even though the connection is pinned to a vetted IP."""

import pytest

from delivery.sender.http import send
from delivery.sender.types import OutboundRequest


def post(url: str):
    return send(OutboundRequest(url=url, body=b"{}"))


def test_a_self_signed_certificate_is_refused_by_default(start_receiver, tls_files):
    receiver = start_receiver(tls=tls_files.server_context(self_signed=True))

    result = post(receiver.url(host="localhost"))

    assert result.status_code is None
    assert result.error.startswith("tls: certificate verify failed")
    assert receiver.requests() == []


def test_a_certificate_from_an_unknown_ca_is_refused(start_receiver, tls_files):
    # Issued by the test CA, which is not in the system bundle.
    receiver = start_receiver(tls=tls_files.server_context())

    result = post(receiver.url(host="localhost"))

    assert result.error.startswith("tls: certificate verify failed")
    assert receiver.requests() == []


def test_a_certificate_for_the_host_name_verifies_against_the_configured_ca(
    start_receiver, test_ca
):
    receiver = start_receiver(tls=test_ca.server_context())

    result = post(receiver.url(host="localhost"))

    assert result.status_code == 200
    assert receiver.sni_names == ["localhost"]


@pytest.mark.ssrf_guard
def test_a_pinned_connection_still_sends_sni_and_verifies_the_host_name(
    start_receiver, test_ca, fake_dns, exempt_loopback
):
    receiver = start_receiver(tls=test_ca.server_context())
    fake_dns.add("service.test", ["127.0.0.1"], ["10.9.9.9"])

    result = post(receiver.url(host="service.test"))

    assert result.status_code == 200
    assert fake_dns.lookups == ["service.test"]  # connected to the vetted IP
    assert receiver.sni_names == ["service.test"]
    assert receiver.requests()[0].headers["Host"] == f"service.test:{receiver.port}"


@pytest.mark.ssrf_guard
def test_a_certificate_for_another_name_fails_on_a_pinned_connection(
    start_receiver, test_ca, fake_dns, exempt_loopback
):
    receiver = start_receiver(tls=test_ca.server_context())
    fake_dns.add("wrong.test", ["127.0.0.1"])

    result = post(receiver.url(host="wrong.test"))

    assert result.status_code is None
    assert result.error == (
        "tls: certificate verify failed: Hostname mismatch, certificate is not "
        "valid for 'wrong.test'."
    )
    assert receiver.sni_names == ["wrong.test"]
    assert receiver.requests() == []


def test_a_certificate_is_not_accepted_for_an_ip_address_it_does_not_name(
    start_receiver, test_ca
):
    receiver = start_receiver(tls=test_ca.server_context())

    result = post(receiver.url(host="127.0.0.1"))

    assert result.error.startswith("tls: certificate verify failed: IP address")
    assert receiver.requests() == []
