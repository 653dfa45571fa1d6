import factory
from django.conf import settings
from django.utils import timezone

from subscriptions.models import Client, Subscription


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"client-{n}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A subscription row written directly (bypassing the API's validation)."""

    class Meta:
        model = Subscription

    client = factory.SubFactory(ClientFactory)
    url = "http://127.0.0.1:9/hooks"
    event_groups = factory.LazyFunction(lambda: ["DELIVERED"])
    fingerprint = factory.Sequence(lambda n: f"{n:064d}")
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = None
    # As the service stores them: the header keys in the clear beside them.
    header_names = factory.LazyAttribute(lambda o: [h["key"] for h in o.headers or []])
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(
        lambda o: o.created_at + settings.WEBHOOK_SUBSCRIPTION_TTL
    )
