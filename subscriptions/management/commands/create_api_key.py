from django.core.management.base import BaseCommand, CommandError

from subscriptions.models import ApiKey
from subscriptions.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key for a client (created if needed); prints the key last."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--client", required=True, help="client (tenant) name")
        parser.add_argument(
            "--scope",
            action="append",
            choices=ApiKey.Scope.values,
            help="repeatable; default: subscriptions",
        )
        parser.add_argument("--name", default="", help="a label for the key")
        parser.add_argument(
            "--tenant",
            action="append",
            default=[],
            help=(
                "repeatable; a publish key bound to these existing tenants "
                "publishes only their tenant events (default: any tenant)"
            ),
        )

    def handle(
        self,
        *args,
        client: str,
        scope: list[str] | None,
        name: str,
        tenant: list[str],
        **options,
    ):
        if not client.strip() or len(client) > 40:
            raise CommandError("--client must be 1 to 40 characters")
        try:
            api_key, key = create_api_key(
                client_name=client.strip(),
                scopes=scope or [ApiKey.Scope.SUBSCRIPTIONS],
                name=name,
                tenants=tenant,
            )
        except ValueError as exc:
            raise CommandError(str(exc))
        bound = sorted(t.name for t in api_key.tenants.all())
        self.stderr.write(
            f"Created key {api_key.prefix}… for client {api_key.client.name} "
            f"with scopes {', '.join(api_key.scopes)}"
            + (f", bound to tenants {', '.join(bound)}" if bound else "")
            + ". It is shown once:"
        )
        self.stdout.write(key)
