from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from events.models import EventType
        from events.services import forget_lookups
        from subscriptions.models import Client

        # The in-process caches of publishing forget what this process changes.
        for model in (EventType, Client):
            post_save.connect(forget_lookups, sender=model, dispatch_uid="lookups")
            post_delete.connect(forget_lookups, sender=model, dispatch_uid="lookups")
