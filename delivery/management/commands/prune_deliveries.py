"""`python manage.py prune_deliveries [--older-than 30d]`: delete events,
their finished deliveries and attempts past the retention, now (beat does the
same every WEBHOOK_PRUNE_INTERVAL: delivery/retention.py)."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from delivery import retention
from webhooks_project import conf


class Command(BaseCommand):
    help = (
        "Delete finished deliveries (succeeded, failed, expired, cancelled) of "
        "events older than the retention with their attempts, the events left "
        "without deliveries, and older attempts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default=None,
            help="a duration such as 30d or 12h (default WEBHOOK_RETENTION)",
        )

    def handle(self, *args: Any, older_than: str | None, **_: Any) -> None:
        retention_period = None if older_than is None else _parse(older_than)
        # An operator running this wants everything gone: no time budget.
        result = retention.prune(older_than=retention_period)
        self.stdout.write(
            f"Deleted {result.events} events, {result.deliveries} deliveries and "
            f"{result.attempts} attempts in {result.seconds:.1f} s."
        )


def _parse(text: str) -> timedelta:
    try:
        return conf.parse_positive_duration(text)
    except ValueError as exc:
        raise CommandError(f"--older-than: {exc}") from None
