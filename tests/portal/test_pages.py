"""The portal's pages through a browser-like client: tenant scoping, the
API's validation and messages, secrets shown once, headers and CSRF."""

import html
import re
from datetime import timedelta

import pytest
from django.test import Client as BrowserClient
from django.utils import timezone

from delivery.models import Attempt, Delivery
from portal.http import COOKIE_NAME
from subscriptions.models import Subscription
from subscriptions.services import pause_subscription
from tests.portal.conftest import open_link
from tests.support.api import HEADER_VALUE, make_delivery
from tests.support.flows import create_webhook

pytestmark = pytest.mark.django_db


def _csrf(browser: BrowserClient, path: str) -> str:
    page = browser.get(path)
    assert page.status_code == 200, page.content
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)[
        1
    ].decode()


def _post(browser: BrowserClient, path: str, form_page: str, data: dict | None = None):
    return browser.post(
        path, {**(data or {}), "csrfmiddlewaretoken": _csrf(browser, form_page)}
    )


def test_every_page_renders_with_landmarks_and_the_stylesheet(portal, api):
    webhook = create_webhook(api, "https://acme.example/hooks")
    for path in (
        "/portal/",
        "/portal/webhooks/new",
        f"/portal/webhooks/{webhook['id']}",
        "/portal/events",
        "/portal/event-types",
    ):
        page = portal.get(path)
        assert page.status_code == 200, path
        html = page.content.decode()
        assert '<main id="main"' in html and "<h1" in html and "<nav" in html
        assert "portal/portal.css" in html
        assert 'name="viewport"' in html


def test_the_webhooks_list_shows_status_groups_attempts_and_success_rate(portal, api):
    webhook = create_webhook(
        api, "https://acme.example/hooks", event_groups=["DELIVERED", "IN_TRANSIT"]
    )
    subscription = Subscription.objects.get(pk=webhook["id"])
    delivery = make_delivery(subscription, "succeeded")
    for number, (code, outcome) in enumerate(
        [(500, "failure"), (200, "ack"), (200, "ack"), (None, "skipped")], 1
    ):
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            at=timezone.now(),
            status_code=code,
            outcome=outcome,
        )

    text = portal.get("/portal/").content.decode()

    assert "active" in text and "DELIVERED, IN_TRANSIT" in text
    # 2 of the 3 sent attempts (the skipped one is not a request).
    assert "67%" in text and "of 3 attempts" in text
    # The last attempts are requests made: a skipped one is not shown either.
    assert text.count('class="outcome ') == 3


def test_another_clients_webhook_is_a_404_page_for_every_action(portal, other_api):
    theirs = create_webhook(other_api, "https://globex.example/hooks")
    base = f"/portal/webhooks/{theirs['id']}"

    page = portal.get(base)
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
    assert b"globex" not in page.content
    for action in ("test", "resume", "rotate-secret", "delete"):
        response = _post(portal, f"{base}/{action}", "/portal/webhooks/new")
        assert response.status_code == 404, action
    assert Subscription.objects.filter(pk=theirs["id"]).exists()
    assert not Delivery.objects.filter(subscription_id=theirs["id"]).exists()
    assert portal.get("/portal/webhooks/not-a-uuid").status_code == 404
    assert portal.get("/portal/nothing-here").status_code == 404


def test_create_shows_the_secret_once_and_never_a_header_value(portal, api):
    response = _post(
        portal,
        "/portal/webhooks/new",
        "/portal/webhooks/new",
        {
            "url": "https://acme.example/in",
            "event_groups": ["DELIVERED", "STATUS_CHANGED:RELEASED"],
            "headers": f"x-token: {HEADER_VALUE}",
        },
    )

    assert response.status_code == 201, response.content
    subscription = Subscription.objects.get(client=api.client_obj)
    assert subscription.event_groups == ["DELIVERED", "STATUS_CHANGED:RELEASED"]
    assert subscription.headers == [{"key": "x-token", "value": HEADER_VALUE}]
    assert subscription.secret.encode() in response.content
    assert response["Cache-Control"] == "no-store"
    assert HEADER_VALUE.encode() not in response.content
    detail = portal.get(f"/portal/webhooks/{subscription.pk}")
    assert b"x-token" in detail.content
    assert subscription.secret.encode() not in detail.content
    assert HEADER_VALUE.encode() not in detail.content
    assert subscription.secret.encode() not in portal.get("/portal/").content


def test_create_gives_the_apis_messages_and_writes_nothing(portal, api):
    form = {
        "url": "ftp://acme.example/in",
        "event_groups": ["NO_SUCH_TYPE"],
        "delivery_ttl": "forever",
        "headers": f"Content-Length: {HEADER_VALUE}",
    }
    response = _post(portal, "/portal/webhooks/new", "/portal/webhooks/new", form)
    api_answer = api.post(
        "/api/v1/webhooks",
        {
            "event_groups": form["event_groups"],
            "configuration": {
                "url": form["url"],
                "delivery_ttl": form["delivery_ttl"],
                "headers": [{"key": "Content-Length", "value": HEADER_VALUE}],
            },
        },
        format="json",
    ).json()

    assert response.status_code == 400
    text = html.unescape(response.content.decode())
    for path, messages in api_answer["errors"].items():
        for message in messages:
            assert message in text, (path, message)
    assert HEADER_VALUE not in text  # not even echoed back into the form
    assert 'aria-invalid="true"' in text
    assert Subscription.objects.count() == 0


def test_an_identical_webhook_gives_the_apis_conflict_message(portal, api):
    create_webhook(api, "https://acme.example/in")
    form = {"url": "https://acme.example/in", "event_groups": ["DELIVERED"]}

    response = _post(portal, "/portal/webhooks/new", "/portal/webhooks/new", form)

    assert response.status_code == 400
    assert b"An identical webhook already exists." in response.content
    assert Subscription.objects.count() == 1


def test_rotate_shows_the_new_secret_once(portal, api):
    webhook = create_webhook(api, "https://acme.example/in")
    path = f"/portal/webhooks/{webhook['id']}"

    response = _post(portal, f"{path}/rotate-secret", path)

    subscription = Subscription.objects.get(pk=webhook["id"])
    assert subscription.secret != webhook["secret"]
    assert subscription.secret.encode() in response.content
    assert subscription.previous_secret.encode() not in response.content
    assert subscription.secret.encode() not in portal.get(path).content


def test_send_test_resume_and_delete(portal, api):
    webhook = create_webhook(api, "https://acme.example/in")
    path = f"/portal/webhooks/{webhook['id']}"
    subscription = Subscription.objects.get(pk=webhook["id"])

    assert _post(portal, f"{path}/test", path).status_code == 302
    assert Delivery.objects.filter(subscription=subscription, kind="test").count() == 1

    not_paused = _post(portal, f"{path}/resume", path)
    assert b"The webhook is not paused." in portal.get(not_paused["Location"]).content
    pause_subscription(subscription=subscription, reason="receiver down")
    assert b"Resume" in portal.get(path).content
    _post(portal, f"{path}/resume", path)
    subscription.refresh_from_db()
    assert subscription.status == "active"

    deleted = _post(portal, f"{path}/delete", path)
    assert deleted.status_code == 302 and deleted["Location"] == "/portal/"
    assert not Subscription.objects.filter(pk=webhook["id"]).exists()


def test_the_webhook_page_shows_attempts_code_duration_excerpt_and_error(portal, api):
    webhook = create_webhook(api, "https://acme.example/in")
    delivery = make_delivery(Subscription.objects.get(pk=webhook["id"]), "failed")
    Attempt.objects.create(
        delivery=delivery,
        number=1,
        at=timezone.now(),
        duration_ms=211,
        status_code=503,
        outcome="failure",
        response_excerpt="<b>upstream down</b>",
    )
    Attempt.objects.create(
        delivery=delivery,
        number=2,
        at=timezone.now(),
        duration_ms=3002,
        outcome="failure",
        error="connect timeout after 3.0s",
    )

    text = portal.get(f"/portal/webhooks/{webhook['id']}").content.decode()

    assert "503" in text and "211 ms" in text and "3002 ms" in text
    assert "&lt;b&gt;upstream down&lt;/b&gt;" in text  # escaped, never markup
    assert "connect timeout after 3.0s" in text


def test_events_filters_use_the_apis_rules(portal, api, other_api):
    mine = create_webhook(api, "https://acme.example/in")
    make_delivery(Subscription.objects.get(pk=mine["id"]), "failed")
    theirs = create_webhook(other_api, "https://globex.example/in")
    make_delivery(Subscription.objects.get(pk=theirs["id"]), "failed")

    listed = portal.get("/portal/events", {"status": "failed"})
    assert listed.status_code == 200
    assert listed.content.decode().count("1 failed") == 1
    empty = portal.get("/portal/events", {"status": "succeeded"})
    assert b"No events match." in empty.content
    bad = portal.get("/portal/events", {"status": "lost", "since": "yesterday"})
    assert bad.status_code == 400
    text = bad.content.decode()
    assert "status: must be one of expired, failed, pending, succeeded" in text
    assert "since: must be an ISO 8601 time" in text


def test_replay_uses_the_apis_rules_and_reports_the_result(portal, api, other_api):
    mine = create_webhook(api, "https://acme.example/in")
    make_delivery(Subscription.objects.get(pk=mine["id"]), "failed")
    theirs = create_webhook(other_api, "https://globex.example/in")
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")

    done = _post(
        portal,
        "/portal/events/replay",
        "/portal/events",
        {"webhook": mine["id"], "since": since, "status": ["failed"]},
    )
    assert done.status_code == 302
    assert b"Replayed 1 delivery; skipped 0." in portal.get(done["Location"]).content
    assert Delivery.objects.filter(subscription_id=mine["id"]).count() == 2

    refused = _post(
        portal,
        "/portal/events/replay",
        "/portal/events",
        {"webhook": theirs["id"], "since": since},
    )
    assert refused.status_code == 400
    assert b"choose one of your webhooks" in refused.content
    backwards = _post(
        portal,
        "/portal/events/replay",
        "/portal/events",
        {"webhook": mine["id"], "since": since, "until": "2000-01-01T00:00"},
    )
    assert b"must not be before since" in backwards.content
    assert Delivery.objects.filter(subscription_id=theirs["id"]).count() == 0


def test_event_types_are_listed_with_descriptions(portal):
    text = portal.get("/portal/event-types").content.decode()

    assert "DELIVERED" in text and "The parcel or shipment was delivered." in text
    assert "RELEASED" in text


@pytest.mark.parametrize(
    "action", ["new", "test", "resume", "rotate-secret", "delete", "replay", "out"]
)
def test_a_form_posted_without_its_csrf_token_is_refused(portal, api, action):
    webhook = create_webhook(api, "https://acme.example/in")
    path = {
        "new": "/portal/webhooks/new",
        "replay": "/portal/events/replay",
        "out": "/portal/sign-out",
    }.get(action, f"/portal/webhooks/{webhook['id']}/{action}")

    response = portal.post(
        path, {"url": "https://acme.example/2", "event_groups": ["DELIVERED"]}
    )

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert b"security token" in response.content
    assert Subscription.objects.filter(pk=webhook["id"]).count() == 1
    assert Subscription.objects.count() == 1
    assert Delivery.objects.count() == 0
    assert portal.get("/portal/").status_code == 200  # still signed in


def test_pages_cannot_be_framed_by_default(portal):
    response = portal.get("/portal/")

    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


def test_frame_ancestors_lets_the_platform_embed_the_portal(portal, settings):
    settings.WEBHOOK_PORTAL_FRAME_ANCESTORS = ("https://app.example.com",)

    response = portal.get("/portal/")

    policy = response["Content-Security-Policy"]
    assert "frame-ancestors https://app.example.com" in policy
    assert "X-Frame-Options" not in response


def test_a_session_of_one_client_never_sees_another_after_a_new_link(api, other_api):
    browser = BrowserClient()
    open_link(browser, api)
    first = browser.cookies[COOKIE_NAME].value
    open_link(browser, other_api)

    assert browser.cookies[COOKIE_NAME].value != first
    assert b"globex" in browser.get("/portal/").content


def test_past_the_webhook_quota_create_gives_the_apis_message(portal, settings):
    settings.WEBHOOK_MAX_WEBHOOKS_PER_CLIENT = 0
    form = {"url": "https://acme.example/in", "event_groups": ["DELIVERED"]}

    response = _post(portal, "/portal/webhooks/new", "/portal/webhooks/new", form)

    assert response.status_code == 400
    assert b"Webhook quota exceeded" in response.content
    assert Subscription.objects.count() == 0


def test_a_webhooks_deliveries_are_paged_newest_first(portal, api):
    webhook = create_webhook(api, "https://acme.example/in")
    subscription = Subscription.objects.get(pk=webhook["id"])
    ids = [str(make_delivery(subscription, "failed").event_id) for _ in range(21)]
    path = f"/portal/webhooks/{webhook['id']}"

    first = portal.get(path).content.decode()
    older = re.search(r'href="(\?cursor=[^"]+)"', first)[1]
    second = portal.get(path + html.unescape(older)).content.decode()

    assert [i for i in ids if i in first] == ids[1:]
    assert [i for i in ids if i in second] == ids[:1]
    assert "Older deliveries" not in second
    assert portal.get(path + "?cursor=not-a-cursor").status_code == 404


def test_a_replay_over_the_cap_gives_the_apis_message(portal, api, monkeypatch):
    from delivery.ops import replay

    monkeypatch.setattr(replay, "WEBHOOK_REPLAY_MAX", 1)
    mine = create_webhook(api, "https://acme.example/in")
    for _ in range(2):
        make_delivery(Subscription.objects.get(pk=mine["id"]), "failed")
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")

    response = _post(
        portal,
        "/portal/events/replay",
        "/portal/events",
        {"webhook": mine["id"], "since": since},
    )

    assert response.status_code == 400
    assert b"more than 1 deliveries match (the most one call takes)" in (
        response.content
    )
    assert Delivery.objects.count() == 2
