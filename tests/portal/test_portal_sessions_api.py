"""POST /api/v1/portal-sessions and the one-time link it answers."""

import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client as BrowserClient
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.access import LINK_TTL
from portal.http import COOKIE_NAME
from portal.models import PortalSession
from tests.support.api import assert_envelope
from tests.support.flows import create_webhook

pytestmark = pytest.mark.django_db


def _link(api) -> str:
    response = api.post("/api/v1/portal-sessions")
    assert response.status_code == 201, response.content
    return urlsplit(response.json()["url"]).path


def test_a_subscriptions_key_gets_a_one_time_link_valid_15_minutes(api):
    before = timezone.now()
    response = api.post("/api/v1/portal-sessions")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    url = urlsplit(body["url"])
    assert (url.scheme, url.netloc) == ("http", "testserver")
    assert url.path.startswith("/portal/enter/")
    expires = parse_datetime(body["expires_at"])
    assert before + LINK_TTL <= expires <= timezone.now() + LINK_TTL
    # Only the token's hash is stored.
    token = url.path.rsplit("/", 1)[1]
    row = PortalSession.objects.get()
    assert token not in (row.link_hash, row.session_hash)
    assert len(row.link_hash) == 64


def test_the_link_opens_a_session_bound_to_its_client_only(api, other_api):
    mine = create_webhook(api, "https://acme.example/hooks")
    theirs = create_webhook(other_api, "https://globex.example/hooks")
    browser = BrowserClient()

    entered = browser.get(_link(api))

    assert entered.status_code == 302 and entered["Location"] == "/portal/"
    cookie = entered.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"]
    assert not cookie["secure"]  # plain http here; see the https test
    page = browser.get("/portal/")
    assert page.status_code == 200
    assert b"acme.example/hooks" in page.content
    assert b"globex.example" not in page.content
    assert browser.get(f"/portal/webhooks/{mine['id']}").status_code == 200
    assert browser.get(f"/portal/webhooks/{theirs['id']}").status_code == 404


def test_over_https_the_session_cookie_is_secure(api):
    entered = BrowserClient().get(_link(api), secure=True)

    assert entered.status_code == 302
    assert entered.cookies[COOKIE_NAME]["secure"]


def test_a_reused_link_is_refused_with_a_clear_page(api):
    link = _link(api)
    assert BrowserClient().get(link).status_code == 302

    again = BrowserClient().get(link)

    assert again.status_code == 403
    assert again["Content-Type"].startswith("text/html")
    assert b"already been used" in again.content
    assert COOKIE_NAME not in again.cookies


def test_an_expired_link_is_refused(api):
    link = _link(api)
    PortalSession.objects.update(link_expires_at=timezone.now() - timedelta(seconds=1))

    response = BrowserClient().get(link)

    assert response.status_code == 403
    assert b"has expired" in response.content
    assert COOKIE_NAME not in response.cookies


@pytest.mark.parametrize(
    "token", ["forged-token", "x" * 43, "%27%3Bdrop", "a" * 5000], ids=str.__len__
)
def test_a_forged_link_is_refused(api, token):
    _link(api)

    response = BrowserClient().get(f"/portal/enter/{token}")

    assert response.status_code == 403
    assert b"not valid" in response.content
    assert b"Traceback" not in response.content


def test_without_a_session_every_page_is_refused(api):
    webhook = create_webhook(api, "https://acme.example/hooks")
    browser = BrowserClient()
    browser.cookies[COOKIE_NAME] = "made-up"

    for path in ("/portal/", f"/portal/webhooks/{webhook['id']}", "/portal/events"):
        response = browser.get(path)
        assert response.status_code == 403, path
        assert b"session has ended" in response.content


def test_an_ended_session_is_refused(api):
    browser = BrowserClient()
    browser.get(_link(api))
    PortalSession.objects.update(
        session_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert browser.get("/portal/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_uses_of_one_link_open_one_session(api):
    link = _link(api)
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def use() -> None:
        try:
            barrier.wait()
            statuses.append(BrowserClient().get(link).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [302] + [403] * 7


def test_the_endpoint_needs_the_subscriptions_scope(make_api, client):
    publisher = make_api("platform", ["publish"])

    assert_envelope(publisher.post("/api/v1/portal-sessions"), 403)
    assert_envelope(client.post("/api/v1/portal-sessions"), 401)
    assert PortalSession.objects.count() == 0


def test_unknown_fields_are_a_400(api):
    response = api.post("/api/v1/portal-sessions", {"client": "globex"}, format="json")

    payload = assert_envelope(response, 400)
    assert payload["errors"] == {"client": ["unknown field"]}
    assert PortalSession.objects.count() == 0


def test_the_schema_documents_the_endpoint(schema):
    operation = schema["paths"]["/api/v1/portal-sessions"]["post"]
    assert {"201", "400", "401", "403"} <= set(operation["responses"])
    assert operation["security"] == [{"ApiKey": []}]


def test_signing_out_ends_the_session(portal):
    portal.get("/portal/")  # its sign-out form sets the CSRF cookie
    token = portal.cookies["csrftoken"].value

    response = portal.post("/portal/sign-out", {"csrfmiddlewaretoken": token})

    assert response.status_code == 200
    assert b"Signed out" in response.content
    assert response.cookies[COOKIE_NAME].value == ""
    assert PortalSession.objects.get().session_expires_at <= timezone.now()
    assert portal.get("/portal/").status_code == 403
