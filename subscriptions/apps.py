from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Clients and subscriptions"

    def ready(self) -> None:
        # Registers the OpenAPI security scheme of the API-key authentication.
        from subscriptions import schema  # noqa: F401
