"""The parsers of webhooks_project/conf.py that the settings tests do not
cover: rate limits."""

from datetime import timedelta

import pytest

from webhooks_project import conf


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("10/s", timedelta(milliseconds=100)),
        ("600/m", timedelta(milliseconds=100)),
        ("1/m", timedelta(minutes=1)),
        ("1000/s", timedelta(milliseconds=1)),
    ],
)
def test_parse_rate(text, interval):
    assert conf.parse_rate(text).interval == interval
    assert str(conf.parse_rate(text)) == text


@pytest.mark.parametrize("text", ["0/s", "1001/s", "60001/m", "10/h", "10", "x"])
def test_parse_rate_refuses_what_is_out_of_bounds(text):
    with pytest.raises(ValueError):
        conf.parse_rate(text)


def test_an_empty_host_rate_limit_is_off():
    assert conf.parse_optional_rate("") is None
    assert conf.parse_optional_rate("50/s") == conf.Rate(50, timedelta(seconds=1))
