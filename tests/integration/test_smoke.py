import pytest

from tests.support.flows import create_webhook, delivery_of, publish

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_published_event_reaches_the_receiver(stack, receiver, api):
    stack.start_worker()
    stack.start_beat()
    webhook = create_webhook(api, receiver.url("/hooks"))
    event_id, count = publish(api.client_obj)
    assert count == 1
    (request,) = receiver.wait_for(1)
    assert request.headers["webhook-id"] == event_id
    delivery = delivery_of(event_id, webhook["id"])
    assert delivery.status in ("pending", "succeeded")
