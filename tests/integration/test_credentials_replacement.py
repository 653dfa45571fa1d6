"""Replacing a webhook's credentials without a gap (docs/api.md, "Replacing
credentials"): create the webhook with the new header value next to the old
one, both receive every event, then delete the old one and only the new one
does."""

import pytest

from tests.support.flows import create_webhook, publish, wait_for_delivery

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_both_webhooks_receive_until_the_old_one_is_deleted(stack, receiver, api):
    url = receiver.url("/hooks")

    def configuration(key: str) -> dict:
        return {"url": url, "headers": [{"key": "x-api-key", "value": key}]}

    old = create_webhook(api, url, configuration=configuration("old-key"))
    new = create_webhook(api, url, configuration=configuration("new-key"))
    stack.start_worker()

    first, count = publish(api.client_obj)
    assert count == 2
    wait_for_delivery(first, old["id"], "succeeded")
    wait_for_delivery(first, new["id"], "succeeded")
    keys = sorted(r.headers["x-api-key"] for r in receiver.requests("/hooks"))
    assert keys == ["new-key", "old-key"]

    assert api.delete(f"/api/v1/webhooks/{old['id']}").status_code == 204
    second, count = publish(api.client_obj)
    assert count == 1
    wait_for_delivery(second, new["id"], "succeeded")
    latest = [
        r for r in receiver.requests("/hooks") if r.headers["webhook-id"] == second
    ]
    assert [r.headers["x-api-key"] for r in latest] == ["new-key"]
