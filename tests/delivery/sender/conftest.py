"""Fixtures of the sender's tests: fresh connection pools, a fake resolver,
and the loopback exemption of the SSRF guard. Their receivers (HTTP, HTTPS,
raw TCP) and the test CA are the shared ones of tests/support/."""

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from delivery.sender import http as outbound
from delivery.sender import ssrf


@pytest.fixture(autouse=True)
def _deterministic_policy() -> None:
    """The sender's tests run at the settings' defaults (timeouts included;
    `short_timeout` where a test needs less), not under the delivery suite's
    policy of tests/delivery/conftest.py, which this overrides."""


@pytest.fixture(autouse=True)
def _fresh_connection_pools() -> Iterator[None]:
    """Each test starts without pooled connections from an earlier one."""
    yield
    for adapter in outbound._adapters.values():
        adapter.poolmanager.clear()


# --- name resolution -----------------------------------------------------------------


@dataclass
class FakeDns:
    """Answers for test names; each name maps to a list of answers, used in
    turn (the last one repeats), so a second lookup can differ (rebinding)."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def add(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = list(answers)


@pytest.fixture
def fake_dns(monkeypatch) -> FakeDns:
    """socket.getaddrinfo answers for the names added; other names (numeric
    forms, `localhost`) go to the real resolver, names in `.test` that were
    not added do not resolve. Nothing ever leaves the machine."""
    dns = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in dns.answers:
            dns.lookups.append(name)
            turns = dns.answers[name]
            answer = turns.pop(0) if len(turns) > 1 else turns[0]
            results = []
            for address in answer:
                if ipaddress.ip_address(address).version == 6:
                    results.append(
                        (
                            socket.AF_INET6,
                            socket.SOCK_STREAM,
                            6,
                            "",
                            (address, port, 0, 0),
                        )
                    )
                else:
                    results.append(
                        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                    )
            return results
        if name.endswith(".test") or name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


@pytest.fixture
def exempt_loopback(monkeypatch) -> None:
    """With the guard on, let exactly 127.0.0.1 through (so a real local
    receiver can stand in for a public one); every other address, including
    the rest of 127.0.0.0/8, stays blocked."""
    real = ssrf.blocked_reason

    def blocked_reason(ip: Any) -> str | None:
        return None if str(ip) == "127.0.0.1" else real(ip)

    monkeypatch.setattr(ssrf, "blocked_reason", blocked_reason)
