"""Publishing through real gunicorn web processes, talked to over HTTP only.

The in-process lookup caches (webhooks_project/lookups.py: API keys, event
types, tenants) live at most WEBHOOK_LOOKUP_CACHE_TTL (500 ms) with no
message between processes, so a change made anywhere must be obeyed by every
web process within a second: a revoked key, a publish key bound to tenants,
a deleted or paused webhook, a new event type. And under concurrent
duplicate publishes, idempotency (per publisher) and tenant isolation hold.

The changes are made from this test process, a third one, as the admin or
a shell would make them; its rows are committed (transactional tests).
"""

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from delivery.models import Delivery
from events.models import Event, EventType
from subscriptions.models import ApiKey, Subscription
from subscriptions.services import create_api_key, pause_subscription, revoke_api_key
from tests.support.factories import ClientFactory
from tests.support.ports import free_port
from tests.support.stack import Stack
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# "Within 1 s" of a change, on every process: twice the default cache TTL.
PROPAGATION = 1.0


@dataclass
class Web:
    """One web process, as a client sees it: HTTP with a bearer key."""

    name: str
    base_url: str
    session: requests.Session

    def call(
        self, method: str, path: str, key: str, **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        return self.session.request(
            method, self.base_url + path, headers=headers, timeout=(2, 15), **kwargs
        )

    def publish(self, key: str, **body: Any) -> requests.Response:
        body.setdefault("type", "DELIVERED")
        body.setdefault("payload", {"status": "delivered"})
        return self.call("POST", "/api/v1/events", key, json=body)

    def create_webhook(self, key: str, path: str, **body: Any) -> str:
        """A webhook to nowhere (no worker runs: only the rows matter)."""
        payload = {
            "event_groups": ["DELIVERED"],
            "configuration": {"url": f"http://127.0.0.1:9{path}"},
            **body,
        }
        response = self.call("POST", "/api/v1/webhooks", key, json=payload)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def healthy(self) -> bool:
        try:
            return self.session.get(self.base_url + "/health", timeout=2).ok
        except requests.RequestException:
            return False


def start_web(stack: Stack, *, workers: int = 1, threads: int = 4) -> Web:
    port = free_port()
    process = stack.start_web(port=port, workers=workers, threads=threads)
    session = requests.Session()
    session.trust_env = False  # a proxy from the environment must not intervene
    web = Web(name=process.name, base_url=f"http://127.0.0.1:{port}", session=session)
    # The app loads lazily: serving /health means Django is up in the worker.
    wait_until(web.healthy, timeout=60, interval=0.1, message=f"{web.name} to serve")
    return web


@pytest.fixture
def two_webs(stack: Stack) -> Iterator[tuple[Web, Web]]:
    """Two web processes of one worker each: two separate sets of caches."""
    webs = (start_web(stack), start_web(stack))
    yield webs
    for web in webs:
        web.session.close()


def new_key(client: str, scope: str) -> tuple[ApiKey, str]:
    return create_api_key(client_name=client, scopes=[scope])


def deliveries_of(event_id: str) -> dict[str, Delivery]:
    """The event's deliveries by webhook id."""
    return {
        str(delivery.subscription_id): delivery
        for delivery in Delivery.objects.filter(event_id=event_id)
    }


def within(seconds: float, probe: Callable[[], Any], message: str) -> Any:
    """probe() until truthy, failing if that takes `seconds` from now, the
    polls themselves included (wait_until accepts a late last poll)."""
    started = time.monotonic()
    found = wait_until(probe, timeout=seconds, interval=0.02, message=message)
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"{message} took {elapsed:.2f} s"
    return found


# --- 1. cache invalidation across two web processes ---------------------------


def test_a_revoked_key_is_refused_by_both_web_processes_within_a_second(two_webs):
    web_a, web_b = two_webs
    revoked_key, key = new_key("acme", "subscriptions")
    _, other_key = new_key("acme", "subscriptions")
    # Used on both just before the revoke: each process holds it freshly
    # cached, the longest it can go on serving it.
    for web in two_webs:
        assert web.call("GET", "/api/v1/webhooks", key).status_code == 200, web.name

    revoke_api_key(api_key=revoked_key)

    def refused_everywhere() -> list[int] | None:
        codes = [
            web.call("GET", "/api/v1/webhooks", key).status_code for web in two_webs
        ]
        return codes if codes == [401, 401] else None

    within(PROPAGATION, refused_everywhere, "both processes to refuse the key")
    refused = web_b.call("GET", "/api/v1/webhooks", key)
    assert refused.json()["status"] == "401"  # the error envelope
    # Only that key: another key of the same client still works on both.
    for web in (web_a, web_b):
        assert web.call("GET", "/api/v1/webhooks", other_key).status_code == 200


def test_binding_a_publish_key_to_a_tenant_holds_on_both_processes_within_a_second(
    two_webs,
):
    acme, _ = ClientFactory(name="acme"), ClientFactory(name="globex")
    api_key, key = new_key("platform", "publish")
    # Cached unbound on both: publishing into globex works everywhere.
    for web in two_webs:
        assert web.publish(key, tenant="globex").status_code == 202, web.name

    api_key.tenants.set([acme])  # as the admin does, from a third process

    def refused_everywhere() -> list[int] | None:
        codes = [web.publish(key, tenant="globex").status_code for web in two_webs]
        return codes if codes == [403, 403] else None

    within(PROPAGATION, refused_everywhere, "both processes to refuse globex")
    for web in two_webs:
        assert web.publish(key, tenant="acme").status_code == 202, web.name


def test_a_webhook_deleted_on_one_process_gets_nothing_published_through_the_other(
    two_webs,
):
    web_a, web_b = two_webs
    _, tenant_key = new_key("acme", "subscriptions")
    _, publish_key = new_key("platform", "publish")
    kept = web_a.create_webhook(tenant_key, "/kept")
    doomed = web_a.create_webhook(tenant_key, "/doomed")
    # Published through B first: B has the key, tenant and type cached now.
    before = web_b.publish(publish_key, tenant="acme")
    assert before.status_code == 202, before.text
    assert set(deliveries_of(before.json()["id"])) == {kept, doomed}

    deleted = web_a.call("DELETE", f"/api/v1/webhooks/{doomed}", tenant_key)
    assert deleted.status_code == 204, deleted.text

    def published_without_the_deleted_one() -> dict[str, Any] | None:
        response = web_b.publish(publish_key, tenant="acme")
        assert response.status_code == 202, response.text
        answer = response.json()
        return answer if doomed not in deliveries_of(answer["id"]) else None

    answer = within(
        PROPAGATION, published_without_the_deleted_one, "no delivery to the deleted"
    )
    assert answer["deliveries"] == 1
    assert set(deliveries_of(answer["id"])) == {kept}


def test_a_webhook_paused_by_an_operator_gets_only_held_deliveries_within_a_second(
    two_webs,
):
    # docs/spec.md: while a webhook is paused its deliveries are held, not
    # dropped (and nothing is sent); so "no delivery" here means none due.
    web_a, web_b = two_webs
    _, tenant_key = new_key("acme", "subscriptions")
    _, publish_key = new_key("platform", "publish")
    kept = web_a.create_webhook(tenant_key, "/kept")
    paused = web_a.create_webhook(tenant_key, "/paused")
    before = web_b.publish(publish_key, tenant="acme")
    assert before.status_code == 202, before.text
    assert {d.status for d in deliveries_of(before.json()["id"]).values()} == {
        "pending"
    }

    assert pause_subscription(
        subscription=Subscription.objects.get(pk=paused), reason="paused by an operator"
    )

    def published_and_held() -> dict[str, Delivery] | None:
        response = web_b.publish(publish_key, tenant="acme")
        assert response.status_code == 202, response.text
        deliveries = deliveries_of(response.json()["id"])
        return deliveries if deliveries[paused].status == "held" else None

    deliveries = within(PROPAGATION, published_and_held, "a held delivery")
    assert deliveries[paused].next_attempt_at is None  # never due while paused
    assert deliveries[kept].status == "pending"
    # And what was pending before the pause is held too.
    assert deliveries_of(before.json()["id"])[paused].status == "held"


def test_a_new_event_type_is_accepted_by_both_processes_within_a_second(two_webs):
    _, publish_key = new_key("platform", "publish")
    ClientFactory(name="acme")  # the tenant
    # Unknown on both first: a miss each process must not remember.
    for web in two_webs:
        refused = web.publish(publish_key, type="PARCEL_INSPECTED", tenant="acme")
        assert refused.status_code == 400, (web.name, refused.text)
        assert "type" in refused.json()["errors"]

    # Created like the admin would, outside both web processes.
    EventType.objects.create(name="PARCEL_INSPECTED", description="added later")

    def accepted_everywhere() -> list[int] | None:
        codes = [
            web.publish(publish_key, type="PARCEL_INSPECTED", tenant="acme").status_code
            for web in two_webs
        ]
        return codes if codes == [202, 202] else None

    within(PROPAGATION, accepted_everywhere, "both processes to take the type")
    assert Event.objects.filter(type="PARCEL_INSPECTED").count() >= 2


# --- 2. concurrent duplicate publishes ----------------------------------------

THREADS = 16
IDS = ["order-1", "order-2", "order-3", "order-4"]
# Tenants alternate along IDS, so every round below mixes both.
TENANT_OF = {
    "order-1": "acme",
    "order-2": "globex",
    "order-3": "acme",
    "order-4": "globex",
}


@dataclass(frozen=True)
class Sent:
    publisher: str
    order: str
    status: int
    body: Any


def test_concurrent_duplicate_publishes_make_one_event_per_publisher_and_id(stack):
    web = start_web(stack, workers=2, threads=4)
    publish_keys = {
        "platform": new_key("platform", "publish")[1],
        "carrier": new_key("carrier", "publish")[1],
    }
    acme_key = new_key("acme", "subscriptions")[1]
    globex_key = new_key("globex", "subscriptions")[1]
    expected = {
        "acme": {
            web.create_webhook(acme_key, "/acme-1"),
            web.create_webhook(acme_key, "/acme-2"),
        },
        "globex": {web.create_webhook(globex_key, "/globex")},
    }
    # Webhooks of the right tenants that these events must not reach: another
    # type, and another resource.
    web.create_webhook(acme_key, "/acme-other-type", event_groups=["IN_TRANSIT"])
    web.create_webhook(globex_key, "/globex-other-parcel", trackingId="PARCEL-X")

    # Each (publisher, id) is a key; in every round half the threads send one
    # key and half the next, all released at once by the barrier, so each key
    # is sent by 8 threads at the same moment in each of two rounds.
    keys = [(publisher, order) for order in IDS for publisher in publish_keys]
    barrier = threading.Barrier(THREADS)
    sent: list[Sent] = []
    failures: list[str] = []

    def publisher_thread(n: int) -> None:
        session = requests.Session()
        session.trust_env = False
        try:
            for turn in range(len(keys)):
                publisher, order = keys[(turn + n % 2) % len(keys)]
                # The id in the body, in the Idempotency-Key header, or both.
                body = {
                    "type": "DELIVERED",
                    "tenant": TENANT_OF[order],
                    "resource_id": f"parcel-{order}",
                    "payload": {"order": order},
                }
                headers = {"Authorization": f"Bearer {publish_keys[publisher]}"}
                if n % 3 != 1:
                    body["id"] = order
                if n % 3 != 0:
                    headers["Idempotency-Key"] = order
                barrier.wait(timeout=60)
                response = session.post(
                    f"{web.base_url}/api/v1/events",
                    json=body,
                    headers=headers,
                    timeout=(2, 30),
                )
                try:
                    answer = response.json()
                except ValueError:
                    answer = response.text[:200]
                sent.append(Sent(publisher, order, response.status_code, answer))
        except Exception as exc:  # reported by the test below
            failures.append(f"thread {n}: {exc!r}")
            barrier.abort()  # the others stop waiting instead of timing out
        finally:
            session.close()

    threads = [
        threading.Thread(target=publisher_thread, args=(n,), daemon=True)
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "publishers hung"
    assert not failures, failures

    # Every request answered: 202 for the one that created, 200 for repeats.
    assert len(sent) == THREADS * len(keys)
    assert {s.status for s in sent} <= {200, 202}, [
        s for s in sent if s.status not in (200, 202)
    ][:5]
    by_key: dict[tuple[str, str], list[Sent]] = defaultdict(list)
    for s in sent:
        by_key[(s.publisher, s.order)].append(s)
    assert set(by_key) == set(keys)
    answered: dict[tuple[str, str], str] = {}
    for key, answers in by_key.items():
        assert len({a.body["id"] for a in answers}) == 1, (key, answers)
        assert Counter(a.status for a in answers)[202] == 1, (key, answers)
        # A repeat answers with the existing event's deliveries.
        assert {a.body["deliveries"] for a in answers} == {
            len(expected[TENANT_OF[key[1]]])
        }, (key, answers)
        answered[key] = answers[0].body["id"]

    # One Event row per (publisher, id), the one every answer named; the same
    # id from the other publisher is another event.
    events = Event.objects.select_related("publisher", "tenant").filter(
        idempotency_key__in=IDS
    )
    assert sorted((e.publisher.name, e.idempotency_key) for e in events) == sorted(keys)
    assert {(e.publisher.name, e.idempotency_key): str(e.id) for e in events} == (
        answered
    )
    for order in IDS:
        assert answered[("platform", order)] != answered[("carrier", order)]

    # Each event reaches its own tenant's matching webhooks, once each.
    for event in events:
        tenant = TENANT_OF[event.idempotency_key]
        assert event.tenant.name == tenant
        deliveries = list(Delivery.objects.filter(event=event))
        webhooks = [str(d.subscription_id) for d in deliveries]
        assert sorted(webhooks) == sorted(expected[tenant]), event.idempotency_key
        assert {d.client.name for d in deliveries} == {tenant}
    assert Delivery.objects.count() == sum(
        len(expected[TENANT_OF[order]]) for _, order in keys
    )
