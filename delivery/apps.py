from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self) -> None:
        from delivery.pipeline import durability, reconnect

        durability.connect()
        reconnect.connect()
