"""delivery.pipeline.claiming: a claim leases due rows, oldest first."""

import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from delivery.models import Delivery
from delivery.pipeline import claiming
from tests.support.factories import ClientFactory
from tests.support.rows import make_delivery, make_event, reload

pytestmark = pytest.mark.django_db


class TestClaiming:
    def test_a_claim_takes_a_lease_and_hides_the_row(self, subscribe, sql_path):
        delivery = make_delivery(subscribe("http://a.example/hooks"))
        now = timezone.now()
        token, rows = claiming.claim_due(limit=10, now=now)
        assert [row.id for row in rows] == [delivery.id]
        claimed = reload(delivery)
        assert claimed.lease_token == token
        assert claimed.status == "pending"
        assert claimed.next_attempt_at == now + timedelta(minutes=1)
        assert claiming.claim_due(limit=10, now=now)[1] == []

    def test_a_claim_whose_lease_ran_out_can_be_claimed_again(
        self, subscribe, sql_path
    ):
        delivery = make_delivery(subscribe("http://a.example/hooks"))
        now = timezone.now()
        first, _ = claiming.claim_due(limit=10, now=now)
        later = now + timedelta(minutes=1, seconds=1)
        second, rows = claiming.claim_due(limit=10, now=later)
        assert [row.id for row in rows] == [delivery.id]
        assert second != first
        assert reload(delivery).lease_token == second

    def test_oldest_due_first_up_to_the_limit(self, subscribe, sql_path):
        subscription = subscribe("http://a.example/hooks")
        now = timezone.now()
        ages = [5, 1, 3, 4, 2]
        made = {
            age: make_delivery(
                subscription, next_attempt_at=now - timedelta(minutes=age)
            )
            for age in ages
        }
        _, rows = claiming.claim_due(limit=3, now=now)
        assert {row.id for row in rows} == {made[5].id, made[4].id, made[3].id}

    @pytest.mark.parametrize("status", ["held", "succeeded", "failed", "expired"])
    def test_only_pending_rows_are_claimed(self, subscribe, status, sql_path):
        make_delivery(subscribe("http://a.example/hooks"), status=status)
        assert claiming.claim_due(limit=10, now=timezone.now())[1] == []


def _backlog(subscription, count: int, *, due: datetime) -> set:
    """`count` pending deliveries of one event, due from `due` on, 1 ms apart."""
    event = make_event(subscription.client)
    rows = [
        Delivery(
            event=event,
            subscription=subscription,
            client=subscription.client,
            next_attempt_at=due + timedelta(milliseconds=n),
            expires_at=due + timedelta(days=1),
        )
        for n in range(count)
    ]
    return {row.id for row in Delivery.objects.bulk_create(rows)}


class TestFairness:
    def test_a_small_tenant_is_claimed_in_the_first_round_behind_a_backlog(
        self, subscribe, sql_path
    ):
        now = timezone.now()
        noisy = subscribe("http://a.example/hooks", client=ClientFactory(name="a"))
        quiet = subscribe("http://b.example/hooks", client=ClientFactory(name="b"))
        # A's 5,000 have waited an hour; B's 10 just became due.
        _backlog(noisy, 5000, due=now - timedelta(hours=1))
        small = _backlog(quiet, 10, due=now - timedelta(seconds=1))
        _, rows = claiming.claim_due(limit=200, now=now)
        claimed = {row.id for row in rows}
        assert small <= claimed
        assert len(claimed) == 200  # the batch is still filled, with A's oldest

    def test_each_tenant_with_due_work_gets_an_equal_share(self, subscribe, sql_path):
        now = timezone.now()
        tenants = {}
        for n, name in enumerate("abc"):
            hook = subscribe(
                f"http://{name}.example/h", client=ClientFactory(name=name)
            )
            # a's rows are the oldest: oldest-first alone would take only a's.
            tenants[hook.client_id] = _backlog(
                hook, 100, due=now - timedelta(minutes=30 - n)
            )
        oldest = {
            client: set(
                Delivery.objects.filter(id__in=ids)
                .order_by("next_attempt_at")
                .values_list("id", flat=True)[:10]
            )
            for client, ids in tenants.items()
        }
        _, rows = claiming.claim_due(limit=30, now=now)
        assert Counter(row.client_id for row in rows) == {c: 10 for c in tenants}
        for client, ids in oldest.items():  # each tenant's oldest first
            assert {row.id for row in rows if row.client_id == client} == ids

    def test_a_share_a_tenant_cannot_fill_goes_to_the_oldest_rows(
        self, subscribe, sql_path
    ):
        now = timezone.now()
        noisy = subscribe("http://a.example/hooks", client=ClientFactory(name="a"))
        quiet = subscribe("http://b.example/hooks", client=ClientFactory(name="b"))
        backlog = _backlog(noisy, 50, due=now - timedelta(hours=1))
        small = _backlog(quiet, 2, due=now - timedelta(seconds=1))
        oldest_of_a = Delivery.objects.filter(id__in=backlog).order_by(
            "next_attempt_at"
        )
        expected = set(oldest_of_a.values_list("id", flat=True)[:18])
        _, rows = claiming.claim_due(limit=20, now=now)
        claimed = {row.id for row in rows}
        assert small <= claimed and len(claimed) == 20
        assert claimed - small == expected

    def test_rows_not_yet_due_do_not_count_a_tenant_in(self, subscribe, sql_path):
        now = timezone.now()
        noisy = subscribe("http://a.example/hooks", client=ClientFactory(name="a"))
        later = subscribe("http://b.example/hooks", client=ClientFactory(name="b"))
        _backlog(noisy, 40, due=now - timedelta(minutes=5))
        _backlog(later, 40, due=now + timedelta(minutes=5))
        _, rows = claiming.claim_due(limit=30, now=now)
        assert Counter(row.client_id for row in rows) == {noisy.client_id: 30}


@pytest.mark.django_db(transaction=True)
def test_concurrent_fair_claims_never_take_the_same_row(subscribe):
    now = timezone.now()
    expected = set()
    for name in "abc":
        hook = subscribe(f"http://{name}.example/h", client=ClientFactory(name=name))
        expected |= _backlog(hook, 300, due=now - timedelta(minutes=1))
    claimed: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while rows := claiming.claim_due(limit=25, now=now)[1]:
                claimed.extend(row.id for row in rows)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(claimed) == len(set(claimed)) == len(expected)
    assert set(claimed) == expected


def test_a_tenant_left_out_is_not_claimed_at_all(subscribe, sql_path):
    now = timezone.now()
    crowded = subscribe("http://a.example/hooks", client=ClientFactory(name="a"))
    other = subscribe("http://b.example/hooks", client=ClientFactory(name="b"))
    _backlog(crowded, 50, due=now - timedelta(hours=1))
    small = _backlog(other, 10, due=now - timedelta(seconds=1))
    _, rows = claiming.claim_due(limit=30, now=now, skip={crowded.client_id})
    assert {row.id for row in rows} == small
    assert claiming.claim_due(limit=30, now=now, skip={crowded.client_id})[1] == []
