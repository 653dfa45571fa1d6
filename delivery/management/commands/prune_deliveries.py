"""`python manage.py prune_deliveries [--older-than 30d]`: delete finished
deliveries, and attempts, past the retention."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from delivery import services
from webhooks_project import conf


class Command(BaseCommand):
    help = (
        "Delete finished deliveries (succeeded, failed, expired, cancelled) last "
        "changed before the retention, with their attempts, and older attempts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default=None,
            help="a duration such as 30d or 12h (default WEBHOOK_RETENTION_DAYS)",
        )

    def handle(self, *args: Any, older_than: str | None, **_: Any) -> None:
        retention = (
            timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
            if older_than is None
            else _parse_retention(older_than)
        )
        # An operator running this wants everything gone, not one beat's share.
        result = services.prune_finished_deliveries(
            older_than=retention, max_chunks=None
        )
        self.stdout.write(
            f"Deleted {result.deliveries} deliveries and {result.attempts} attempts "
            f"older than {retention}."
        )


def _parse_retention(text: str) -> timedelta:
    try:
        retention = conf.parse_duration(text)
    except ValueError as exc:
        raise CommandError(f"--older-than: {exc}") from None
    if retention <= timedelta(0):
        raise CommandError("--older-than must be longer than 0")
    return retention
