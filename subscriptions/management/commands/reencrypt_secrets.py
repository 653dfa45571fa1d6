"""manage.py reencrypt_secrets: re-encrypt every stored secret under the newest
key of WEBHOOK_ENCRYPTION_KEYS (run after putting a new key first, before
removing the old one)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks_project import crypto


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column (signing secrets, header values, "
        "OAuth2 client secrets) under the newest WEBHOOK_ENCRYPTION_KEYS key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=500, help="rows per transaction"
        )

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            result = crypto.reencrypt_all(batch_size=batch_size)
        except crypto.DecryptionError as exc:
            raise CommandError(str(exc)) from None
        for label, count in sorted(result.by_field.items()):
            self.stdout.write(f"  {label}: {count}")
        self.stdout.write(
            f"Re-encrypted {result.rewritten} values under the newest key "
            f"({result.current} already were)."
        )
