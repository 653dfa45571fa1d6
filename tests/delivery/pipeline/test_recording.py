"""delivery.pipeline.recording: the terminal event types a flush asks for
come from a lookup cache, forgotten when this process saves an event type."""

import time
from datetime import timedelta

import pytest

from delivery.pipeline import recording
from events.models import EventType

pytestmark = pytest.mark.django_db


def test_terminal_types_are_read_once_and_forgotten_when_a_type_is_saved(
    settings, django_assert_num_queries
):
    settings.WEBHOOK_LOOKUP_CACHE_TTL = timedelta(seconds=30)
    EventType.objects.update_or_create(name="DELIVERED", defaults={"terminal": True})
    EventType.objects.update_or_create(name="RETURNED", defaults={"terminal": False})
    with django_assert_num_queries(1):
        assert "DELIVERED" in recording.terminal_types()
        assert "RETURNED" not in recording.terminal_types()

    # Saved here (the admin, the API): this process reads them again at once.
    EventType.objects.filter(name="RETURNED").update(terminal=True)
    assert "RETURNED" not in recording.terminal_types()  # no signal: cached
    EventType.objects.get(name="RETURNED").save()
    assert "RETURNED" in recording.terminal_types()


def test_terminal_types_changed_elsewhere_are_seen_within_the_ttl(settings):
    # Another process's change sends this one no signal: the TTL bounds it.
    settings.WEBHOOK_LOOKUP_CACHE_TTL = timedelta(milliseconds=50)
    EventType.objects.update_or_create(name="RETURNED", defaults={"terminal": False})
    assert "RETURNED" not in recording.terminal_types()

    EventType.objects.filter(name="RETURNED").update(terminal=True)
    time.sleep(0.1)
    assert "RETURNED" in recording.terminal_types()
