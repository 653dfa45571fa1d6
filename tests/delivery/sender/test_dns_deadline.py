"""A destination's name lookup has a hard deadline (WEBHOOK_DNS_TIMEOUT): a
resolver that hangs makes creation a 400 and an attempt a failure that is
ours, not the destination's, within the deadline. The slow resolver is a
monkeypatched getaddrinfo: nothing leaves the machine."""

import ipaddress
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from delivery.policy.classification import destination_health
from delivery.sender import ssrf
from delivery.sender.http import send
from delivery.sender.ssrf import (
    ResolutionTimeout,
    UnresolvableDestination,
    validate_destination,
)
from delivery.sender.types import OutboundRequest
from tests.support.api import assert_envelope, create, new_body, row_counts
from tests.support.paths import ROOT

pytestmark = pytest.mark.ssrf_guard

DEADLINE = timedelta(milliseconds=100)
# Far longer than the deadline, far shorter than a test's patience.
HANG_S = 5.0


class SlowResolver:
    """getaddrinfo that hangs on `*.slow.test` until released (or HANG_S),
    answers `*.fast.test` with a public address at once, and leaves IP
    literals to the real one (which parses them without any lookup)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []
        self._real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
        name = str(host)
        if name.endswith(".slow.test"):
            self.started.append(name)
            self.release.wait(HANG_S)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
        if name.endswith(".fast.test"):
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))
            ]
        ipaddress.ip_address(name)  # anything else would be a real lookup
        return self._real(host, port, *args, **kwargs)


@pytest.fixture
def slow_dns(monkeypatch, settings) -> Iterator[SlowResolver]:
    settings.WEBHOOK_DNS_TIMEOUT = DEADLINE
    resolver = SlowResolver()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    yield resolver
    resolver.release.set()  # let the abandoned lookups' threads finish


def test_a_lookup_that_overruns_the_deadline_is_unresolvable(slow_dns):
    started = time.monotonic()

    with pytest.raises(ResolutionTimeout) as caught:
        validate_destination("https://hooks.slow.test/in")

    assert time.monotonic() - started < 1.0
    assert str(caught.value) == "hooks.slow.test did not resolve within 0.1 s"
    # The same family as a name that does not resolve: every caller that
    # handles one handles the other.
    assert isinstance(caught.value, UnresolvableDestination)


def test_a_lookup_within_the_deadline_is_vetted_as_usual(slow_dns):
    vetted = ssrf.vet_destination("https://hooks.fast.test/in")

    assert vetted.addresses == ((socket.AF_INET, ("93.184.216.34", 443)),)


def test_an_attempt_whose_lookup_overruns_fails_without_charging_the_destination(
    slow_dns,
):
    started = time.monotonic()

    result = send(OutboundRequest(url="https://hooks.slow.test/in", body=b"{}"))

    assert time.monotonic() - started < 1.0
    assert result.status_code is None
    assert result.error == "dns: hooks.slow.test did not resolve within 0.1 s"
    assert result.transport_failure is False
    # The breaker, shared by every tenant of the host, is not told anything.
    assert destination_health(result) is None


@pytest.mark.django_db
def test_creating_a_webhook_whose_host_overruns_the_deadline_is_a_400(slow_dns, api):
    body = new_body()
    body["configuration"]["url"] = "https://hooks.slow.test/in"
    body["configuration"]["oauth2"]["token_url"] = "https://93.184.215.14/token"
    before = row_counts()
    started = time.monotonic()

    payload = assert_envelope(create(api, body), 400)

    assert time.monotonic() - started < 1.0
    assert payload["errors"]["configuration.url"] == [
        "hooks.slow.test did not resolve within 0.1 s"
    ]
    assert row_counts() == before


def test_ip_literals_are_not_sent_to_the_resolver_pool(slow_dns, monkeypatch):
    def no_pool() -> None:
        raise AssertionError("an IP literal needs no lookup thread")

    monkeypatch.setattr(ssrf, "_resolver_pool", no_pool)

    vetted = ssrf.vet_destination("https://93.184.215.14/in")

    assert vetted.addresses == ((socket.AF_INET, ("93.184.215.14", 443)),)


def test_a_hanging_resolver_holds_a_bounded_number_of_threads(slow_dns):
    callers = ssrf._RESOLVER_THREADS + 16

    def lookup(n: int) -> None:
        with pytest.raises(ResolutionTimeout):
            ssrf.vet_host(f"h{n}.slow.test", 443)

    with ThreadPoolExecutor(max_workers=callers) as pool:
        list(pool.map(lookup, range(callers)))

    stuck = [t for t in threading.enumerate() if t.name.startswith("dns")]
    assert len(stuck) <= ssrf._RESOLVER_THREADS
    # Lookups still queued at their deadline were cancelled, never run.
    assert len(slow_dns.started) <= ssrf._RESOLVER_THREADS


@pytest.mark.parametrize("value", ["0s", "0ms", "soon"])
def test_a_deadline_that_is_not_a_positive_duration_stops_start_up(tmp_path, value):
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
            "WEBHOOK_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "WEBHOOK_DNS_TIMEOUT": value,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "ImproperlyConfigured: WEBHOOK_DNS_TIMEOUT" in done.stderr
