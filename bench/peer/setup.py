"""Configure the peer's one webhook: python -m bench.peer.setup --url URL.

As django-webhook's quickstart: a Webhook to the sink with the topic
`parcels.Parcel/create` (the topics are created when the app starts)."""

import argparse
import os

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peer.settings")
    django.setup()
    from django_webhook.models import Webhook, WebhookTopic

    webhook = Webhook(url=args.url)
    webhook.save()
    webhook.topics.set([WebhookTopic.objects.get(name="parcels.Parcel/create")])
    print(webhook.pk)


if __name__ == "__main__":
    main()
