from collections.abc import Callable, Iterable

import pytest

from subscriptions.models import Client, Subscription, SubscriptionFilter
from tests.support.factories import ClientFactory, SubscriptionFactory


def add_filters(subscription: Subscription, groups: Iterable[str]) -> None:
    """The normalised SubscriptionFilter rows of `event_groups` entries."""
    SubscriptionFilter.objects.bulk_create(
        SubscriptionFilter(
            subscription=subscription,
            event_type=group.partition(":")[0],
            subtype=group.partition(":")[2],
        )
        for group in groups
    )


@pytest.fixture
def subscribe(db) -> Callable[..., Subscription]:
    """subscribe("acme", ["STATUS_CHANGED:RELEASED"], tracking_id=...) -> Subscription.

    In tests/events/ this replaces the suite's `subscribe(url, **fields)`
    (tests/support/fixtures/rows.py).

    Writes the subscription and its filter rows directly, as the subscriptions
    API would; `client` is a Client or a client name.
    """

    def _subscribe(
        client: Client | str, groups: Iterable[str] = ("DELIVERED",), **fields
    ) -> Subscription:
        if isinstance(client, str):
            client = ClientFactory(name=client)
        groups = list(groups)
        subscription = SubscriptionFactory(client=client, event_groups=groups, **fields)
        add_filters(subscription, groups)
        return subscription

    return _subscribe


@pytest.fixture
def platform(db) -> Client:
    """The publishing client (what the publisher_api fixture authenticates as)."""
    return ClientFactory(name="platform")


@pytest.fixture
def woken(monkeypatch) -> list[int]:
    """The due_count of every wake_workers call publish_event makes."""
    calls: list[int] = []
    monkeypatch.setattr(
        "events.services.wake_workers",
        lambda *, due_count: calls.append(due_count),
    )
    return calls
