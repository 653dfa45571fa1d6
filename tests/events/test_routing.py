"""Routing (docs/spec.md, "Events"): which subscriptions an event reaches."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Delivery
from events.models import Event
from events.selectors import matching_subscriptions
from events.services import publish_event
from subscriptions.models import Subscription
from tests.support.factories import ClientFactory
from tests.support.rows import earlier

HOUR = timedelta(hours=1)

# Each case: the subscription (owner, groups, extra fields), the event (tenant,
# type, subtype, resource_id) and whether the event reaches the subscription.
ROUTING_CASES = [
    pytest.param(
        {"owner": "acme"},
        {"tenant": "acme", "type": "DELIVERED"},
        True,
        id="tenant event reaches the tenant's subscription to its type",
    ),
    pytest.param(
        {"owner": "globex"},
        {"tenant": "acme", "type": "DELIVERED"},
        False,
        id="tenant event never reaches another tenant",
    ),
    pytest.param(
        {"owner": "globex", "tracking_id": "PKG1"},
        {"tenant": "acme", "type": "DELIVERED", "resource_id": "PKG1"},
        False,
        id="tenant event never reaches another tenant tracking its resource",
    ),
    pytest.param(
        {"owner": "acme", "tracking_id": "PKG1"},
        {"tenant": "acme", "type": "DELIVERED", "resource_id": "PKG1"},
        True,
        id="tenant event reaches the tenant's subscription tracking its resource",
    ),
    pytest.param(
        {"owner": "acme", "tracking_id": "PKG2"},
        {"tenant": "acme", "type": "DELIVERED", "resource_id": "PKG1"},
        False,
        id="tenant event skips a subscription tracking another resource",
    ),
    pytest.param(
        {"owner": "acme", "tracking_id": "PKG1"},
        {"tenant": "acme", "type": "DELIVERED"},
        False,
        id="tenant event without resource skips tracking subscriptions",
    ),
    pytest.param(
        {"owner": "acme", "tracking_id": ""},
        {"tenant": "acme", "type": "DELIVERED", "resource_id": "PKG1"},
        True,
        id="an empty trackingId tracks nothing in particular",
    ),
    pytest.param(
        {"owner": "globex", "tracking_id": "PKG1"},
        {"tenant": None, "type": "DELIVERED", "resource_id": "PKG1"},
        True,
        id="public event reaches any client tracking its resource",
    ),
    pytest.param(
        {"owner": "globex"},
        {"tenant": None, "type": "DELIVERED", "resource_id": "PKG1"},
        False,
        id="public event skips subscriptions without trackingId",
    ),
    pytest.param(
        {"owner": "globex", "tracking_id": "PKG2"},
        {"tenant": None, "type": "DELIVERED", "resource_id": "PKG1"},
        False,
        id="public event skips subscriptions tracking another resource",
    ),
    pytest.param(
        {"owner": "globex"},
        {"tenant": None, "type": "DELIVERED"},
        False,
        id="public event without resource reaches nobody",
    ),
    pytest.param(
        {"owner": "acme", "groups": ["IN_TRANSIT"]},
        {"tenant": "acme", "type": "DELIVERED"},
        False,
        id="other event types are filtered out",
    ),
    pytest.param(
        {"owner": "acme", "groups": ["IN_TRANSIT", "DELIVERED"]},
        {"tenant": "acme", "type": "DELIVERED"},
        True,
        id="any of several event groups matches",
    ),
    pytest.param(
        {"owner": "acme", "groups": ["STATUS_CHANGED"]},
        {"tenant": "acme", "type": "STATUS_CHANGED", "subtype": "RELEASED"},
        True,
        id="a type without subtype matches every subtype",
    ),
    pytest.param(
        {"owner": "acme", "groups": ["STATUS_CHANGED:RELEASED"]},
        {"tenant": "acme", "type": "STATUS_CHANGED", "subtype": "RELEASED"},
        True,
        id="TYPE:SUBTYPE matches that subtype",
    ),
    pytest.param(
        {"owner": "acme", "groups": ["STATUS_CHANGED:RELEASED"]},
        {"tenant": "acme", "type": "STATUS_CHANGED", "subtype": "SUBMITTED"},
        False,
        id="TYPE:SUBTYPE skips other subtypes",
    ),
    pytest.param(
        {"owner": "acme", "groups": ["STATUS_CHANGED:RELEASED"]},
        {"tenant": "acme", "type": "STATUS_CHANGED"},
        False,
        id="TYPE:SUBTYPE skips the type without subtype",
    ),
    pytest.param(
        {"owner": "acme", "groups": ["DOCUMENT_GENERATED:RELEASED"]},
        {"tenant": "acme", "type": "STATUS_CHANGED", "subtype": "RELEASED"},
        False,
        id="the subtype only counts with its own type",
    ),
    pytest.param(
        {"owner": "acme", "created_at": +HOUR},
        {"tenant": "acme", "type": "DELIVERED"},
        False,
        id="subscriptions created after the event was published are skipped",
    ),
    pytest.param(
        {"owner": "acme", "created_at": timedelta(0)},
        {"tenant": "acme", "type": "DELIVERED"},
        True,
        id="a subscription created the instant the event was published matches",
    ),
    pytest.param(
        {"owner": "acme", "status": Subscription.Status.EXPIRED},
        {"tenant": "acme", "type": "DELIVERED"},
        False,
        id="expired subscriptions are skipped",
    ),
    pytest.param(
        {"owner": "acme", "expires_at": -HOUR},
        {"tenant": "acme", "type": "DELIVERED"},
        False,
        id="subscriptions past their expiry are skipped before the sweep",
    ),
    pytest.param(
        {"owner": "acme", "status": Subscription.Status.PAUSED},
        {"tenant": "acme", "type": "DELIVERED"},
        True,
        id="paused subscriptions match (their delivery is held)",
    ),
]


@pytest.mark.parametrize(("subscription", "event", "reaches"), ROUTING_CASES)
def test_routing(subscribe, platform, subscription, event, reaches):
    published_at = timezone.now() - 2 * HOUR
    fields = dict(subscription)
    owner = fields.pop("owner")
    groups = fields.pop("groups", ["DELIVERED"])
    # Times in the table are relative to the event's publication.
    fields["created_at"] = published_at + fields.get("created_at", -HOUR)
    if "expires_at" in fields:
        fields["expires_at"] = published_at + fields["expires_at"]
    target = subscribe(owner, groups, **fields)
    tenant = event.pop("tenant")
    published = Event.objects.create(
        publisher=platform,
        tenant=ClientFactory(name=tenant) if tenant else None,
        created_at=published_at,
        **event,
    )

    matched = list(matching_subscriptions(published))

    assert matched == ([target] if reaches else [])


def test_a_subscription_matching_through_several_groups_gets_one_delivery(
    subscribe, platform
):
    subscription = subscribe(
        "acme", ["STATUS_CHANGED", "STATUS_CHANGED:RELEASED"], created_at=earlier()
    )

    result = publish_event(
        publisher=platform,
        type="STATUS_CHANGED",
        subtype="RELEASED",
        tenant="acme",
        payload={},
    )

    assert result.deliveries == 1
    assert list(result.event.deliveries.values_list("subscription", flat=True)) == [
        subscription.id
    ]


def test_publishing_routes_to_every_match_and_only_to_matches(subscribe, platform):
    acme_all = subscribe("acme", ["DELIVERED"], created_at=earlier())
    acme_parcel = subscribe(
        "acme", ["DELIVERED"], tracking_id="PKG1", created_at=earlier()
    )
    subscribe("acme", ["DELIVERED"], tracking_id="PKG2", created_at=earlier())
    subscribe("acme", ["IN_TRANSIT"], created_at=earlier())
    subscribe("globex", ["DELIVERED"], created_at=earlier())
    subscribe("globex", ["DELIVERED"], tracking_id="PKG1", created_at=earlier())

    result = publish_event(
        publisher=platform,
        type="DELIVERED",
        tenant="acme",
        resource_id="PKG1",
        payload={"status": "delivered"},
    )

    assert result.created is True
    assert result.deliveries == 2
    assert set(result.event.deliveries.values_list("subscription", flat=True)) == {
        acme_all.id,
        acme_parcel.id,
    }
    assert set(result.event.deliveries.values_list("client__name", flat=True)) == {
        "acme"
    }


def test_a_public_event_reaches_every_client_tracking_its_resource(subscribe, platform):
    acme = subscribe("acme", ["DELIVERED"], tracking_id="PKG1", created_at=earlier())
    globex = subscribe(
        "globex", ["DELIVERED"], tracking_id="PKG1", created_at=earlier()
    )
    subscribe("initech", ["DELIVERED"], created_at=earlier())

    result = publish_event(
        publisher=platform, type="DELIVERED", resource_id="PKG1", payload={}
    )

    assert set(result.event.deliveries.values_list("subscription", flat=True)) == {
        acme.id,
        globex.id,
    }


def test_a_paused_subscription_gets_a_held_delivery_and_no_wake_up(
    subscribe, platform, woken, django_capture_on_commit_callbacks
):
    active = subscribe("acme", created_at=earlier())
    paused = subscribe("acme", created_at=earlier(), status=Subscription.Status.PAUSED)

    with django_capture_on_commit_callbacks(execute=True):
        result = publish_event(
            publisher=platform, type="DELIVERED", tenant="acme", payload={}
        )

    deliveries = {d.subscription_id: d for d in result.event.deliveries.all()}
    assert result.deliveries == 2
    assert deliveries[active.id].status == Delivery.Status.PENDING
    assert deliveries[active.id].next_attempt_at <= timezone.now()
    assert deliveries[paused.id].status == Delivery.Status.HELD
    assert woken == [1]


def test_an_event_nobody_listens_to_is_stored_and_wakes_nobody(
    subscribe, platform, woken, django_capture_on_commit_callbacks
):
    subscribe("acme", ["IN_TRANSIT"], created_at=earlier())

    with django_capture_on_commit_callbacks(execute=True):
        result = publish_event(
            publisher=platform, type="DELIVERED", tenant="acme", payload={}
        )

    assert result.created is True
    assert result.deliveries == 0
    assert Event.objects.filter(pk=result.event.pk).exists()
    assert woken == []


def test_workers_are_woken_only_once_the_publish_commits(
    subscribe, platform, woken, django_capture_on_commit_callbacks
):
    subscribe("acme", created_at=earlier())
    subscribe("acme", created_at=earlier())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        publish_event(publisher=platform, type="DELIVERED", tenant="acme", payload={})
        assert woken == []

    for callback in callbacks:
        callback()
    assert woken == [2]


def test_deliveries_expire_one_delivery_ttl_after_publication(
    subscribe, platform, settings
):
    settings.WEBHOOK_DELIVERY_TTL = timedelta(minutes=7)
    subscribe("acme", created_at=earlier())

    result = publish_event(
        publisher=platform, type="DELIVERED", tenant="acme", payload={}
    )

    delivery = result.event.deliveries.get()
    assert delivery.expires_at == result.event.created_at + timedelta(minutes=7)
