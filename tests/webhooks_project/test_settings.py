import ipaddress
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from webhooks_project import conf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100ms", timedelta(milliseconds=100)),
        ("10s", timedelta(seconds=10)),
        ("1.5s", timedelta(seconds=1.5)),
        ("5m", timedelta(minutes=5)),
        ("24h", timedelta(hours=24)),
        ("30d", timedelta(days=30)),
        (" 7s ", timedelta(seconds=7)),
    ],
)
def test_it_parses_durations_with_units(text, expected):
    assert conf.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["10", "ten seconds", "5w", "-1s", "", "1.2.3s", "s"])
def test_it_rejects_durations_without_a_known_unit(text):
    with pytest.raises(ValueError):
        conf.parse_duration(text)


def test_it_parses_the_retry_schedule_as_a_comma_list():
    assert conf.parse_schedule("100ms, 200ms,400ms") == (
        timedelta(milliseconds=100),
        timedelta(milliseconds=200),
        timedelta(milliseconds=400),
    )


@pytest.mark.parametrize("text", ["", " , ", "10s,soon"])
def test_it_rejects_an_empty_or_malformed_schedule(text):
    with pytest.raises(ValueError):
        conf.parse_schedule(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("10%", 0.1), ("0.25", 0.25), ("0", 0.0)]
)
def test_it_parses_jitter_as_percent_or_fraction(text, expected):
    assert conf.parse_fraction(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["150%", "-5%", "x"])
def test_it_rejects_jitter_outside_zero_to_one(text):
    with pytest.raises(ValueError):
        conf.parse_fraction(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("262144", 262144), ("256KiB", 262144), ("1MiB", 1048576)]
)
def test_it_parses_sizes(text, expected):
    assert conf.parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("0", False), ("", False)]
)
def test_it_parses_booleans(text, expected):
    assert conf.parse_bool(text) is expected


def test_a_bad_value_fails_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_DELIVERY_TTL='tomorrow'"):
        conf.read(
            {"WEBHOOK_DELIVERY_TTL": "tomorrow"},
            "WEBHOOK_DELIVERY_TTL",
            "24h",
            conf.parse_duration,
        )


def test_the_default_applies_when_the_variable_is_unset():
    assert conf.read(
        {}, "WEBHOOK_DELIVERY_TTL", "24h", conf.parse_duration
    ) == timedelta(hours=24)


def test_the_service_refuses_to_start_with_a_bad_setting(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(
        os.environ, WEBHOOK_RETRY_SCHEDULE="10s,often", WEBHOOK_VAR_DIR=str(tmp_path)
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "WEBHOOK_RETRY_SCHEDULE" in result.stderr


def test_it_parses_the_egress_proxy():
    assert conf.parse_egress_proxy("") is None
    plain = conf.parse_egress_proxy("http://egress.internal:3128")
    assert (plain.host, plain.port, plain.authorization) == (
        "egress.internal",
        3128,
        None,
    )
    with_user = conf.parse_egress_proxy("http://svc%40acme:p%3Ass@[fd00::1]:8080/")
    assert (with_user.host, with_user.port) == ("fd00::1", 8080)
    assert with_user.authorization == "Basic c3ZjQGFjbWU6cDpzcw=="  # svc@acme:p:ss


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("https://app.example.com", ("https://app.example.com",)),
        (
            "'self', https://*.example.com:8443  http://localhost:3000",
            ("'self'", "https://*.example.com:8443", "http://localhost:3000"),
        ),
    ],
)
def test_it_parses_the_portals_frame_ancestors(text, expected):
    assert conf.parse_frame_ancestors(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://egress.internal:3128",
        "socks5://egress.internal:1080",
        "egress.internal:3128",
        "http://egress.internal",
        "http://egress.internal:3128/path",
        "http://:3128",
    ],
)
def test_a_bad_egress_proxy_is_refused_without_showing_it(text):
    with pytest.raises(ValueError):
        conf.parse_egress_proxy(text)
    secret = text.replace("//", "//user:pr0xy-pw@", 1)
    with pytest.raises(ImproperlyConfigured) as refused:
        conf.read(
            {"WEBHOOK_EGRESS_PROXY": secret},
            "WEBHOOK_EGRESS_PROXY",
            "",
            conf.parse_egress_proxy,
            secret=True,
        )
    assert "WEBHOOK_EGRESS_PROXY" in str(refused.value)
    assert "pr0xy-pw" not in str(refused.value)


def test_it_parses_no_proxy():
    assert conf.parse_no_proxy("") == ()
    assert conf.parse_no_proxy(" Hooks.Example , .corp.example., 10.0.0.0/8, *") == (
        "hooks.example",
        "corp.example",
        ipaddress.ip_network("10.0.0.0/8"),
        "*",
    )
    for bad in ("http://x.example", "10.0.0.1/8", "a b.example"):
        with pytest.raises(ValueError):
            conf.parse_no_proxy(bad)


@pytest.mark.parametrize(
    "text",
    [
        "*",
        "app.example.com",
        "https://a.example; script-src *",
        "'none'",
        "https://a/x",
    ],
)
def test_it_rejects_frame_ancestors_that_are_not_origins(text):
    with pytest.raises(ValueError, match="is not an origin"):
        conf.parse_frame_ancestors(text)
