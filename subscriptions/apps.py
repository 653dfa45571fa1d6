from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Clients and subscriptions"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        # Registers the OpenAPI security scheme of the API-key authentication.
        from subscriptions import schema  # noqa: F401
        from subscriptions.auth import forget_keys
        from subscriptions.models import ApiKey, Client

        # The in-process cache of API keys forgets what this process changes.
        for model in (ApiKey, Client):
            post_save.connect(forget_keys, sender=model, dispatch_uid="forget_keys")
            post_delete.connect(forget_keys, sender=model, dispatch_uid="forget_keys")
        # A publish key bound to other tenants (the admin's change form).
        m2m_changed.connect(
            forget_keys, sender=ApiKey.tenants.through, dispatch_uid="forget_keys"
        )
