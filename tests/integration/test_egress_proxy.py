"""A real worker process with WEBHOOK_EGRESS_PROXY set sends every delivery
and its OAuth2 token request through a CONNECT proxy on loopback
(tests/support/connect_proxy.py), TLS end to end; the environment's proxy
variables route nothing."""

import uuid

import pytest

from tests.support.flows import create_webhook, publish
from tests.support.oauth2 import TokenEndpoint
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EVENTS = 5


def test_a_worker_sends_deliveries_and_token_requests_through_the_proxy(
    stack, start_receiver, start_proxy, test_ca, api
):
    proxy = start_proxy()
    context = test_ca.server_context()
    receiver = start_receiver(tls=context)
    endpoint = TokenEndpoint(start_receiver, context)
    stack.start_worker(
        WEBHOOK_EGRESS_PROXY=proxy.url(), WEBHOOK_CA_BUNDLE=str(test_ca.ca_bundle)
    )
    url = receiver.url("/hooks", host="localhost")
    oauth2 = {
        "token_url": endpoint.url,
        "client_id": "abc",
        # A fresh secret: no token cached by an earlier run.
        "client_secret": f"s3cr3t-{uuid.uuid4()}",
    }
    create_webhook(api, url, configuration={"url": url, "oauth2": oauth2})

    for _ in range(EVENTS):
        publish(api.client_obj)

    delivered = receiver.wait_for(EVENTS, path="/hooks", timeout=30)
    assert {r.headers["Authorization"] for r in delivered} == {"Bearer tok-1"}
    assert len(endpoint.calls) == 1
    # The guard is lifted in the stack (loopback receivers): the tunnel is
    # asked for the name. Every connection the worker opened was a tunnel.
    wanted = {f"localhost:{receiver.port}", f"localhost:{endpoint.server.port}"}
    wait_until(lambda: set(proxy.targets()) == wanted, message="both tunnels")
    assert {r.method for r in proxy.requests} == {"CONNECT"}


def test_the_environments_proxy_variables_are_not_the_egress_proxy(
    stack, receiver, start_proxy, api
):
    # Only WEBHOOK_EGRESS_PROXY routes deliveries: HTTP(S)_PROXY, which a
    # host may set for other tools, are ignored.
    proxy = start_proxy()
    stack.start_worker(
        HTTP_PROXY=proxy.url(), HTTPS_PROXY=proxy.url(), http_proxy=proxy.url()
    )
    create_webhook(api, receiver.url("/hooks"))

    publish(api.client_obj)

    receiver.wait_for(1, path="/hooks", timeout=30)
    assert proxy.requests == []
