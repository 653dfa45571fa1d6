"""Logs: one JSON line per attempt (no secret in it), API errors under their
envelope's uuid, and the log format setting."""

import json
import logging
import re
import uuid

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from delivery.pipeline import outbound, wakeups
from delivery.pipeline.attempt_log import logged_url, redacted_url, safe_url
from delivery.pipeline.engine import deliver_due_batch
from delivery.sender import oauth2
from tests.support.api import HEADER_VALUE, assert_envelope, create, new_body
from tests.support.oauth2 import TokenEndpoint
from tests.support.receiver import Reply
from tests.support.rows import SECRET, make_delivery
from webhooks_project import conf
from webhooks_project.logs import JsonFormatter, TextFormatter, parse_log_format

HEADER_SECRET = "hdr-value-7f3a9c"
CLIENT_SECRET = "oauth-client-secret-51be"
QUERY_SECRET = "query-token-0d2e"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch) -> None:
    monkeypatch.setattr(wakeups, "send_wakeups", lambda **kwargs: 0)


def _lines(caplog, logger: str) -> list[tuple[logging.LogRecord, str]]:
    formatter = JsonFormatter()
    return [(r, formatter.format(r)) for r in caplog.records if r.name == logger]


def test_an_attempt_is_one_json_line_naming_it_without_any_secret(
    subscribe, receiver, caplog, request
):
    tls = request.getfixturevalue("test_ca").server_context()
    endpoint = TokenEndpoint(request.getfixturevalue("start_receiver"), tls)
    subscription = subscribe(
        receiver.url("/hooks") + f"?key={QUERY_SECRET}",
        headers=[{"key": "x-api-key", "value": HEADER_SECRET}],
        oauth2_token_url=endpoint.url,
        oauth2_client_id="abc",
        oauth2_client_secret=CLIENT_SECRET,
    )
    request.addfinalizer(
        lambda: cache.delete(oauth2.cache_key(outbound.oauth2_config(subscription)))
    )
    delivery = make_delivery(subscription)

    with caplog.at_level(logging.INFO, logger="webhooks.attempts"):
        deliver_due_batch(limit=10)

    (sent,) = receiver.requests()
    token = sent.headers["authorization"].removeprefix("Bearer ")
    assert token == "tok-1" and sent.headers["x-api-key"] == HEADER_SECRET
    ((record, line),) = _lines(caplog, "webhooks.attempts")
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "INFO"
    assert data["logger"] == "webhooks.attempts"
    assert data["event_id"] == str(delivery.event_id)
    assert data["delivery_id"] == str(delivery.id)
    assert data["subscription_id"] == str(subscription.id)
    assert data["outcome"] == "ack"
    assert data["status_code"] == 200
    assert data["attempt"] == 1
    assert isinstance(data["duration_ms"], int) and data["duration_ms"] >= 0
    assert data["error"] is None
    # Scheme, host and port, and a digest of the path and query: not the path.
    assert data["url"] == redacted_url(receiver.url("/hooks") + f"?key={QUERY_SECRET}")
    assert data["url"].startswith(receiver.url("/…#"))
    for secret in (
        HEADER_SECRET,
        SECRET,
        SECRET.removeprefix("whsec_"),
        sent.headers["webhook-signature"],
        CLIENT_SECRET,
        QUERY_SECRET,
        f"Bearer {token}",
    ):
        assert secret not in line
    assert "tok-1" not in json.dumps({k: v for k, v in data.items() if k != "time"})


def test_a_failed_attempt_logs_its_status_and_error(subscribe, receiver, caplog):
    receiver.script("/down", Reply(503))
    subscription = subscribe(receiver.url("/down"))
    make_delivery(subscription)
    nowhere = subscribe("http://127.0.0.1:9/closed")
    make_delivery(nowhere)

    with caplog.at_level(logging.INFO, logger="webhooks.attempts"):
        deliver_due_batch(limit=10)

    lines = [json.loads(line) for _, line in _lines(caplog, "webhooks.attempts")]
    by_url = {data["url"]: data for data in lines}
    down = by_url[redacted_url(receiver.url("/down"))]
    assert down["status_code"] == 503
    assert down["outcome"] == "failure"
    closed = by_url[redacted_url("http://127.0.0.1:9/closed")]
    assert closed["status_code"] is None
    assert closed["outcome"] == "failure"
    assert closed["error"] == "connection refused"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://u:pw@Example.com:8443/a/b?token=x#f", "https://example.com:8443/a/b"),
        ("https://example.com/hooks?key=1", "https://example.com/hooks"),
        ("http://[::1]:8080/h", "http://[::1]:8080/h"),
    ],
)
def test_the_logged_url_keeps_scheme_host_port_and_path_only(url, safe):
    assert safe_url(url) == safe


PATH_SECRET = "T0/B0/path-token-9c41e2"


def test_an_attempt_line_never_carries_the_path_by_default(subscribe, receiver, caplog):
    subscription = subscribe(receiver.url(f"/services/{PATH_SECRET}"))
    make_delivery(subscription)

    with caplog.at_level(logging.INFO, logger="webhooks.attempts"):
        deliver_due_batch(limit=10)

    ((record, line),) = _lines(caplog, "webhooks.attempts")
    assert json.loads(line)["outcome"] == "ack"
    for part in ("services", "path-token-9c41e2", "T0/B0"):
        assert part not in line
    assert json.loads(line)["url"] == redacted_url(subscription.url)


def test_with_full_urls_on_an_attempt_line_carries_the_path_but_no_query(
    subscribe, receiver, caplog, settings
):
    settings.WEBHOOK_LOG_FULL_URLS = True
    subscription = subscribe(receiver.url("/hooks") + f"?key={QUERY_SECRET}")
    make_delivery(subscription)

    with caplog.at_level(logging.INFO, logger="webhooks.attempts"):
        deliver_due_batch(limit=10)

    ((record, line),) = _lines(caplog, "webhooks.attempts")
    assert json.loads(line)["url"] == receiver.url("/hooks")
    assert QUERY_SECRET not in line


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://u:pw@Example.com/hooks/s3cr3t?k=x#f", "https://example.com:443"),
        ("http://example.com:8080/a", "http://example.com:8080"),
        ("http://[::1]/h", "http://[::1]:80"),
    ],
)
def test_the_redacted_url_is_the_origin_and_a_digest_of_the_path(url, origin):
    redacted = redacted_url(url)

    assert re.fullmatch(re.escape(origin) + r"/…#[0-9a-f]{6}", redacted)
    assert "s3cr3t" not in redacted and "pw" not in redacted and "k=x" not in redacted


def test_the_digest_tells_paths_apart_and_is_stable():
    first = redacted_url("https://example.com/hooks/a")

    assert redacted_url("https://example.com/hooks/a") == first
    assert redacted_url("https://EXAMPLE.com:443/hooks/a") == first
    assert redacted_url("https://example.com/hooks/b") != first
    assert redacted_url("https://example.com/hooks/a?x=1") != first


def test_the_digest_is_keyed_so_a_guessed_path_cannot_be_checked_without_the_key(
    settings,
):
    before = redacted_url("https://example.com/hooks/1234")
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"

    assert redacted_url("https://example.com/hooks/1234") != before


def test_a_bare_root_path_is_kept_as_is():
    assert redacted_url("https://example.com") == "https://example.com:443/"
    assert redacted_url("https://example.com/") == "https://example.com:443/"


def test_the_setting_chooses_between_redacted_and_full(settings):
    url = "https://example.com/hooks/s3cr3t?k=x"

    settings.WEBHOOK_LOG_FULL_URLS = False
    assert logged_url(url) == redacted_url(url)
    settings.WEBHOOK_LOG_FULL_URLS = True
    assert logged_url(url) == "https://example.com/hooks/s3cr3t"


def test_an_api_error_is_logged_once_under_its_envelope_uuid(api, caplog):
    with caplog.at_level(logging.INFO):
        response = api.get(f"/api/v1/webhooks/{uuid.uuid4()}")

    payload = assert_envelope(response, 404)
    ((record, line),) = _lines(caplog, "webhooks.api")
    data = json.loads(line)
    assert data["uuid"] == payload["uuid"]
    assert data["status_code"] == 404
    assert data["method"] == "GET"
    assert data["level"] == "WARNING"
    assert payload["uuid"] in data["message"]
    # Django's own line for the same answer (without the uuid) is not written.
    assert not [r for r in caplog.records if r.name == "django.request"]


def test_a_validation_error_logs_its_fields_but_not_what_was_sent(api, caplog):
    body = new_body()
    body["configuration"]["url"] = "ftp://example.com/hooks"

    with caplog.at_level(logging.INFO, logger="webhooks.api"):
        response = create(api, body)

    payload = assert_envelope(response, 400)
    ((record, line),) = _lines(caplog, "webhooks.api")
    data = json.loads(line)
    assert data["uuid"] == payload["uuid"]
    assert data["fields"] == sorted(payload["errors"])
    assert HEADER_VALUE not in line and "ftp://" not in line


def test_an_unknown_path_is_logged_under_its_envelope_uuid(client, caplog, db):
    with caplog.at_level(logging.INFO, logger="webhooks.api"):
        response = client.get("/no/such/page?token=abc")

    payload = assert_envelope(response, 404)
    ((record, line),) = _lines(caplog, "webhooks.api")
    data = json.loads(line)
    assert (data["uuid"], data["path"]) == (payload["uuid"], "/no/such/page")
    assert "token=abc" not in line


def test_logs_are_json_by_default_and_text_on_request():
    formatters = {type(handler.formatter) for handler in logging.getLogger().handlers}
    assert JsonFormatter in formatters
    record = logging.makeLogRecord(
        {"name": "webhooks.x", "levelname": "INFO", "msg": "hello", "delivery_id": 7}
    )
    text = TextFormatter().format(record)
    assert text.endswith("INFO webhooks.x hello delivery_id=7")


def test_log_format_is_json_or_text_and_anything_else_stops_start_up():
    assert parse_log_format(" JSON ") == "json"
    assert parse_log_format("text") == "text"
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT='xml'"):
        conf.read({"LOG_FORMAT": "xml"}, "LOG_FORMAT", "json", parse_log_format)
