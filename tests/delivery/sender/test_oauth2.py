"""OAuth2 client credentials against a real local token endpoint (HTTPS, test CA):
what is sent, caching across deliveries and worker processes, the single
refetch on a 401, and token endpoint failures as clean attempt failures."""

import base64
import json
import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache

from delivery.sender import oauth2
from delivery.sender.http import send
from delivery.sender.types import OAuth2Config, OutboundRequest
from tests.support.oauth2 import TokenEndpoint
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.receiver import json_reply


@pytest.fixture
def token_endpoint(start_receiver, test_ca):
    return TokenEndpoint(start_receiver, test_ca.server_context())


@pytest.fixture
def forget_tokens():
    """Drop the cached tokens of the configs a test used."""
    used: list[OAuth2Config] = []
    yield used.append
    for config in used:
        cache.delete(oauth2.cache_key(config))


def make_config(endpoint: TokenEndpoint, forget, **fields) -> OAuth2Config:
    config = OAuth2Config(
        token_url=endpoint.url,
        client_id=fields.pop("client_id", "abc"),
        client_secret=fields.pop("client_secret", "s3cr3t-client"),
        **fields,
    )
    forget(config)
    return config


def deliver(receiver, config: OAuth2Config):
    return send(OutboundRequest(url=receiver.url(), body=b"{}", oauth2=config))


def test_it_fetches_a_token_with_audience_and_scope_and_sends_it_as_bearer(
    token_endpoint, receiver, forget_tokens
):
    config = make_config(
        token_endpoint,
        forget_tokens,
        audience="https://example.com",
        scope="webhooks read",
    )

    result = deliver(receiver, config)

    assert result.status_code == 200
    (call,) = token_endpoint.calls
    assert call["form"] == {
        "grant_type": "client_credentials",
        "audience": "https://example.com",
        "scope": "webhooks read",
    }
    basic = base64.b64decode(call["headers"]["Authorization"].removeprefix("Basic "))
    assert basic == b"abc:s3cr3t-client"
    assert receiver.requests()[0].headers["Authorization"] == "Bearer tok-1"


def test_audience_and_scope_are_left_out_when_not_set(
    token_endpoint, receiver, forget_tokens
):
    deliver(receiver, make_config(token_endpoint, forget_tokens))

    assert token_endpoint.calls[0]["form"] == {"grant_type": "client_credentials"}


def test_the_token_is_reused_across_deliveries(token_endpoint, receiver, forget_tokens):
    config = make_config(token_endpoint, forget_tokens)

    results = [deliver(receiver, config) for _ in range(3)]

    assert [r.status_code for r in results] == [200, 200, 200]
    assert len(token_endpoint.calls) == 1
    assert {r.headers["Authorization"] for r in receiver.requests()} == {"Bearer tok-1"}


def test_the_token_is_shared_with_another_worker_process_through_redis(
    token_endpoint, receiver, forget_tokens, test_ca
):
    config = make_config(token_endpoint, forget_tokens, scope="webhooks")
    assert deliver(receiver, config).status_code == 200

    script = f"""
import django, json
django.setup()
from delivery.sender.http import send
from delivery.sender.types import OAuth2Config, OutboundRequest
config = OAuth2Config(**{json.dumps(config.__dict__)})
result = send(OutboundRequest(url={receiver.url()!r}, body=b"{{}}", oauth2=config))
print(json.dumps({{"status": result.status_code, "error": result.error}}))
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
        "REDIS_URL": django_settings.REDIS_URL,
        "WEBHOOK_ALLOW_PRIVATE_DESTINATIONS": "true",
        "WEBHOOK_CA_BUNDLE": str(test_ca.ca_bundle),
    }
    worker = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert worker.returncode == 0, worker.stderr
    assert json.loads(worker.stdout.strip().splitlines()[-1]) == {
        "status": 200,
        "error": None,
    }
    assert len(token_endpoint.calls) == 1
    assert [r.headers["Authorization"] for r in receiver.requests()] == [
        "Bearer tok-1",
        "Bearer tok-1",
    ]


def test_a_401_refetches_the_token_once_and_retries_the_attempt(
    token_endpoint, start_receiver, forget_tokens
):
    receiver = start_receiver(
        lambda r: (
            (401, {}, b"")
            if r.headers["Authorization"] == "Bearer tok-1"
            else (200, {}, b"ok")
        )
    )
    config = make_config(token_endpoint, forget_tokens)

    result = deliver(receiver, config)
    again = deliver(receiver, config)

    assert (result.status_code, again.status_code) == (200, 200)
    assert len(token_endpoint.calls) == 2
    assert [r.headers["Authorization"] for r in receiver.requests()] == [
        "Bearer tok-1",
        "Bearer tok-2",
        "Bearer tok-2",  # the refetched token replaced the cached one
    ]


def test_a_receiver_that_keeps_answering_401_gets_exactly_one_retry(
    token_endpoint, start_receiver, forget_tokens
):
    receiver = start_receiver(lambda r: (401, {}, b"denied"))
    config = make_config(token_endpoint, forget_tokens)

    result = deliver(receiver, config)

    assert result.status_code == 401
    assert result.response_excerpt == "denied"
    assert len(token_endpoint.calls) == 2
    assert len(receiver.requests()) == 2


def test_a_token_endpoint_that_is_down_fails_the_attempt_cleanly(receiver, test_ca):
    port = free_port()
    config = OAuth2Config(
        token_url=f"https://localhost:{port}/token",
        client_id="abc",
        client_secret="s3cr3t-client",
    )

    result = deliver(receiver, config)

    assert result.status_code is None
    assert result.error == "oauth2 token: connection refused"
    assert receiver.requests() == []


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda r: json_reply({"error": "invalid_client"}, 401), "answered 401"),
        (lambda r: (500, {}, b"<html>oops s3cr3t-client</html>"), "answered 500"),
        (lambda r: (302, {"Location": "http://127.0.0.1:9/"}, b""), "answered 302"),
        (lambda r: (200, {"Content-Type": "text/html"}, b"<html>"), "invalid token"),
        (lambda r: json_reply({"token_type": "Bearer"}), "no access_token"),
        (lambda r: json_reply({"error": "invalid_scope"}), "invalid token response"),
        (lambda r: (200, {}, b"x" * 5_000_000), "token response too large"),
    ],
    ids=["401", "500", "redirect", "not-json", "no-token", "error-in-200", "huge"],
)
def test_a_bad_token_answer_is_a_failure_without_secrets(
    start_receiver, receiver, test_ca, forget_tokens, answer, error
):
    endpoint = TokenEndpoint(start_receiver, test_ca.server_context(), answer=answer)
    config = make_config(endpoint, forget_tokens)

    result = deliver(receiver, config)

    assert result.status_code is None
    assert result.error.startswith("oauth2 token: ")
    assert error in result.error
    assert "s3cr3t" not in result.error
    assert receiver.requests() == []


def test_a_token_with_a_different_scope_than_asked_for_is_still_used(
    start_receiver, receiver, test_ca, forget_tokens
):
    endpoint = TokenEndpoint(
        start_receiver,
        test_ca.server_context(),
        answer=lambda r: json_reply(
            {"access_token": "narrow", "token_type": "Bearer", "scope": "read"}
        ),
    )
    config = make_config(endpoint, forget_tokens, scope="read write")

    result = deliver(receiver, config)

    assert result.status_code == 200
    assert receiver.requests()[0].headers["Authorization"] == "Bearer narrow"


def test_a_plain_http_token_url_is_refused(receiver, start_receiver, forget_tokens):
    endpoint_server = start_receiver()
    config = OAuth2Config(
        token_url=endpoint_server.url("/token"), client_id="a", client_secret="b"
    )
    forget_tokens(config)

    result = deliver(receiver, config)

    assert result.error == "oauth2 token: token_url must use https"
    assert endpoint_server.requests() == []


def test_the_token_is_cached_only_until_shortly_before_it_expires(
    start_receiver, receiver, test_ca, forget_tokens
):
    endpoint = TokenEndpoint(start_receiver, test_ca.server_context(), expires_in=1)
    config = make_config(endpoint, forget_tokens)

    deliver(receiver, config)
    deliver(receiver, config)
    time.sleep(1.2)
    deliver(receiver, config)

    assert len(endpoint.calls) == 2


def test_the_cache_key_holds_no_secret_and_depends_on_every_field():
    base = OAuth2Config("https://idp.example/token", "abc", "s3cr3t", "aud", "scope")
    key = oauth2.cache_key(base)

    assert "s3cr3t" not in key and "abc" not in key
    variants = [
        OAuth2Config("https://idp.example/other", "abc", "s3cr3t", "aud", "scope"),
        OAuth2Config("https://idp.example/token", "abd", "s3cr3t", "aud", "scope"),
        OAuth2Config("https://idp.example/token", "abc", "wrong", "aud", "scope"),
        OAuth2Config("https://idp.example/token", "abc", "s3cr3t", "other", "scope"),
        OAuth2Config("https://idp.example/token", "abc", "s3cr3t", "aud", "other"),
    ]
    assert len({key, *(oauth2.cache_key(v) for v in variants)}) == 6


def test_a_subscription_with_someone_elses_client_id_but_a_wrong_secret_gets_no_token(
    token_endpoint, receiver, forget_tokens
):
    # A real provider would refuse the wrong secret; what matters here is that
    # the cached token of the right secret is not handed out for it.
    right = make_config(token_endpoint, forget_tokens, client_secret="right")
    wrong = make_config(token_endpoint, forget_tokens, client_secret="wrong")

    deliver(receiver, right)
    deliver(receiver, wrong)

    assert len(token_endpoint.calls) == 2


def test_the_cached_token_is_not_stored_in_clear_in_redis(
    token_endpoint, receiver, forget_tokens
):
    config = make_config(token_endpoint, forget_tokens)
    deliver(receiver, config)

    client = redis.Redis.from_url(django_settings.REDIS_URL)
    stored = [client.get(k) for k in client.scan_iter("*oauth2-token*")]

    assert stored
    assert all(b"tok-1" not in value for value in stored if value)
