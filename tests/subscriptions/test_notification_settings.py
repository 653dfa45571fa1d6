"""GET/PUT /api/v1/notification-settings (docs/api.md, "Operational
notifications")."""

import pytest

from subscriptions.models import Client
from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db

URL = "/api/v1/notification-settings"


def test_a_client_sets_reads_and_clears_its_notification_url(api):
    assert api.get(URL).json() == {"notification_url": None}

    first = api.put(
        URL, {"notification_url": "https://ops.example.com/n"}, format="json"
    )
    second = api.put(
        URL, {"notification_url": "https://ops.example.com/n"}, format="json"
    )

    assert first.status_code == second.status_code == 200
    assert first.json()["secret"].startswith("whsec_")
    # Each PUT signs with a new secret, shown once.
    assert first.json()["secret"] != second.json()["secret"]
    assert api.get(URL).json() == {"notification_url": "https://ops.example.com/n"}
    client = Client.objects.get(pk=api.client_obj.pk)
    assert client.notification_secret == second.json()["secret"]

    cleared = api.put(URL, {"notification_url": None}, format="json")
    assert cleared.json() == {"notification_url": None}
    client.refresh_from_db()
    assert (client.notification_url, client.notification_secret) == ("", "")


@pytest.mark.ssrf_guard
@pytest.mark.parametrize(
    "value", ["ftp://x.example/n", "not a url", "http://127.0.0.1/n", 5, ""], ids=repr
)
def test_a_bad_or_blocked_url_is_a_400_naming_the_field(api, value):
    payload = assert_envelope(
        api.put(URL, {"notification_url": value}, format="json"), 400
    )
    assert list(payload["errors"]) == ["notification_url"]
    assert Client.objects.get(pk=api.client_obj.pk).notification_url == ""


def test_unknown_fields_and_a_publish_key_are_refused(api, make_api):
    payload = assert_envelope(
        api.put(URL, {"url": "https://x.example"}, format="json"), 400
    )
    assert "url" in payload["errors"]
    publisher = make_api("platform", ["publish"])
    assert publisher.get(URL).status_code == 403
