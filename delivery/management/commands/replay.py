"""`python manage.py replay --webhook ID --since T [--status failed,expired]`:
send a webhook's failed (or expired, …) deliveries again, as new deliveries."""

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from delivery.models import Delivery
from delivery.ops.replay import replay_deliveries
from subscriptions.models import Subscription
from webhooks_project import conf

_BAR_WIDTH = 30


def parse_since(text: str, *, now: datetime) -> datetime:
    """`2h` (that long ago) or an ISO 8601 time (UTC unless it says otherwise)."""
    try:
        return now - conf.parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(
            f"--since {text!r} is neither a duration (30m, 2h, 7d) nor an ISO 8601 "
            "time (2026-11-22T10:00:00Z)"
        ) from None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def parse_statuses(text: str) -> list[str]:
    statuses = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(statuses) - set(Delivery.Status.values))
    if not statuses or unknown:
        raise CommandError(
            f"--status {text!r}: use a comma list of {', '.join(Delivery.Status)}"
        )
    return statuses


class Command(BaseCommand):
    help = (
        "Send a webhook's deliveries created since T again, as new deliveries "
        "(due now, fresh TTL). Paused, expired and deleted webhooks are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--webhook", required=True, help="the webhook (id)")
        parser.add_argument(
            "--since",
            required=True,
            help="an ISO 8601 time, or a duration meaning that long ago (2h, 7d)",
        )
        parser.add_argument(
            "--status",
            default="failed,expired",
            help="comma list of delivery statuses to replay (default failed,expired)",
        )

    def handle(
        self, *args: Any, webhook: str, since: str, status: str, **_: Any
    ) -> None:
        since_at = parse_since(since, now=timezone.now())
        statuses = parse_statuses(status)
        try:
            subscription = Subscription.objects.get(pk=webhook)
        except (Subscription.DoesNotExist, ValidationError, ValueError):
            raise CommandError(f"no webhook {webhook!r}") from None
        deliveries = Delivery.objects.filter(
            subscription=subscription, created_at__gte=since_at, status__in=statuses
        )
        total = deliveries.count()
        self.stdout.write(
            f"Replaying {total} deliveries of webhook {subscription.pk} "
            f"({', '.join(statuses)}, since {since_at.isoformat()})"
        )
        if subscription.status != Subscription.Status.ACTIVE:
            self.stdout.write(
                f"The webhook is {subscription.status}: its deliveries are skipped."
            )
        result = replay_deliveries(
            deliveries=deliveries, on_progress=lambda done: self._bar(done, total)
        )
        if total:
            self.stdout.write("")
        self.stdout.write(
            f"Replayed {result.created} deliveries; skipped {result.skipped} "
            "(webhook paused, expired or deleted, a test delivery, or already "
            "pending)."
        )

    def _bar(self, done: int, total: int) -> None:
        filled = _BAR_WIDTH * done // total if total else _BAR_WIDTH
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        self.stdout.write(f"\r[{bar}] {done}/{total}", ending="")
        self.stdout.flush()
