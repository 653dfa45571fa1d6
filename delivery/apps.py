from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from delivery.pipeline import durability, reconnect, recording
        from events.models import EventType

        durability.connect()
        reconnect.connect()
        for signal in (post_save, post_delete):
            signal.connect(
                recording.forget_terminal_types,
                sender=EventType,
                dispatch_uid="terminal",
            )
