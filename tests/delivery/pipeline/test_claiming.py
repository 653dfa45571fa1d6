"""delivery.pipeline.claiming: a claim leases due rows, oldest first."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.pipeline import claiming
from tests.support.rows import make_delivery, reload

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
