"""The portal in real Chromium (playwright) against the web process, a real
Celery worker and a real local receiver."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from delivery.models import Delivery
from subscriptions.models import Subscription
from subscriptions.services import pause_subscription
from tests.portal.conftest import portal_link
from tests.support.flows import create_webhook, publish, wait_for_delivery
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 20_000


def _new_page(chromium, *, width: int = 1280, height: int = 900):
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    return page


def _reload_until(page, probe, message: str, timeout: float = 30.0) -> None:
    """Reload the page until probe(page) holds (the portal has no live updates)."""

    def seen() -> bool:
        page.reload()
        return probe(page)

    wait_until(seen, timeout=timeout, interval=0.3, message=message)


def test_a_customer_creates_a_webhook_tests_it_and_replays_a_failed_event(
    stack, live_portal, chromium, receiver, api
):
    stack.start_worker()
    page = _new_page(chromium, width=390, height=844)  # a phone

    # A fresh link opens the customer's webhooks.
    page.goto(portal_link(api, live_portal))
    assert page.url == f"{live_portal}/portal/"
    expect(page.get_by_role("heading", name="Your webhooks")).to_be_visible()

    # Create a webhook to the local receiver.
    page.get_by_role("link", name="New webhook").click()
    page.get_by_label("Endpoint URL").fill(receiver.url("/hooks"))
    page.get_by_label("DELIVERED", exact=True).check()
    page.get_by_role("button", name="Create webhook").click()
    expect(page.get_by_role("heading", name="Webhook created")).to_be_visible()
    subscription = Subscription.objects.get(client=api.client_obj)
    secret = page.get_by_role("textbox", name="Secret")
    assert secret.input_value() == subscription.secret

    # Send a test and see its attempt appear.
    page.get_by_role("link", name="Go to the webhook").click()
    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_text("A test event is on its way")).to_be_visible()
    _reload_until(
        page,
        lambda p: p.locator("tbody tr").filter(has_text="200").count() == 1,
        "the test's attempt on the webhook page",
    )
    row = page.locator("tbody tr").first.inner_text()
    assert "ack" in row and " ms" in row and "ok" in row
    (test_request,) = receiver.requests("/hooks")
    assert test_request.headers["x-webhook-event"] == "TEST"

    # An event the receiver refuses fails; the customer finds it.
    receiver.script("/hooks", Reply(400, b"unknown parcel"), Reply(200))
    event_id, _ = publish(api.client_obj)
    wait_for_delivery(event_id, str(subscription.pk), "failed", timeout=30)
    page.get_by_role("link", name="Events").click()
    page.get_by_label("Delivery status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    events = page.locator("tbody tr")
    assert events.count() == 1 and "1 failed" in events.first.inner_text()

    # Replay the last hour, and see the event succeed.
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page.get_by_label("From (UTC)").fill(since)
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_text("Replayed 1 delivery; skipped 0.")).to_be_visible()
    page.goto(f"{live_portal}/portal/events?status=succeeded")
    _reload_until(
        page,
        lambda p: "1 succeeded" in p.locator("main").inner_text(),
        "the replayed event to succeed",
    )
    deliveries = Delivery.objects.filter(event_id=event_id).order_by("created_at")
    assert [d.status for d in deliveries] == ["failed", "succeeded"]
    assert [r.headers["webhook-id"] for r in receiver.requests("/hooks")[1:]] == [
        event_id,
        event_id,
    ]


def test_a_reused_link_is_refused(live_portal, chromium, api):
    link = portal_link(api, live_portal)
    first = _new_page(chromium)
    assert first.goto(link).status == 200  # after the redirect to /portal/

    other = chromium.new_context().new_page()
    answer = other.goto(link)

    assert answer.status == 403
    expect(other.get_by_role("heading", name="Access refused")).to_be_visible()
    expect(other.get_by_text("already been used")).to_be_visible()
    assert other.goto(f"{live_portal}/portal/").status == 403


def test_another_tenants_webhook_url_is_a_404_page(
    live_portal, chromium, api, other_api
):
    theirs = create_webhook(other_api, "https://globex.example/hooks")
    page = _new_page(chromium)
    page.goto(portal_link(api, live_portal))

    answer = page.goto(f"{live_portal}/portal/webhooks/{theirs['id']}")

    assert answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert "globex" not in page.content()


def test_every_form_posted_without_its_csrf_token_is_refused(
    live_portal, chromium, api
):
    webhook = create_webhook(api, "https://acme.example/hooks")
    subscription = Subscription.objects.get(pk=webhook["id"])
    pause_subscription(subscription=subscription, reason="so that Resume shows")
    page = _new_page(chromium)
    page.goto(portal_link(api, live_portal))
    detail = f"{live_portal}/portal/webhooks/{webhook['id']}"
    forms = [
        (f"{live_portal}/portal/webhooks/new", "/portal/webhooks/new"),
        (detail, "/test"),
        (detail, "/resume"),
        (detail, "/rotate-secret"),
        (detail, "/delete"),
        (f"{live_portal}/portal/events", "/portal/events/replay"),
        (f"{live_portal}/portal/", "/portal/sign-out"),
    ]

    for page_url, action in forms:
        page.goto(page_url)
        form = page.locator(f"form[method=post][action$='{action}']")
        assert form.count() == 1, action
        # The form as a page without the token would send it (cookie and all).
        form.locator("input[name=csrfmiddlewaretoken]").evaluate("e => e.remove()")
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            form.evaluate("f => f.submit()")
        assert posted.value.status == 403, action
        page.wait_for_load_state()
        expect(page.get_by_role("heading", name="Access refused")).to_be_visible()

    subscription.refresh_from_db()
    assert subscription.status == "paused"
    assert subscription.secret == webhook["secret"]
    assert Subscription.objects.count() == 1
    assert Delivery.objects.count() == 0
