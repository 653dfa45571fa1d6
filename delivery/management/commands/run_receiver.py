"""`python manage.py run_receiver`: a tiny local webhook receiver for trying
the service out. It prints every request it gets and, given the webhook's
secret, whether its Standard Webhooks signature verifies."""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def make_handler(
    *, secret: str | None, status: int, out: Any
) -> type[BaseHTTPRequestHandler]:
    verifier = Webhook(secret) if secret else None
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        # Without this every answer waits ~40 ms for a delayed ACK.
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"
        server_version = "run_receiver"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            lines = [f"--- {self.command} {self.path}"]
            lines += [f"{name}: {value}" for name, value in self.headers.items()]
            lines.append("")
            lines.append(_pretty(body))
            if verifier is not None:
                try:
                    verifier.verify(body, dict(self.headers))
                    lines.append("signature: valid")
                except WebhookVerificationError as exc:
                    lines.append(f"signature: INVALID ({exc})")
            with lock:
                out.write("\n".join(lines) + "\n\n")
                out.flush()
            answer = b"ok" if 200 <= status < 300 else b"receiver says no"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_PUT = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _pretty(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", errors="replace")


class Command(BaseCommand):
    help = (
        "Run a local webhook receiver that prints each request and checks its "
        "signature (with --secret)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9000)
        parser.add_argument(
            "--secret", help="The webhook's whsec_… secret, to verify signatures."
        )
        parser.add_argument(
            "--status", type=int, default=200, help="The HTTP status to answer."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        handler = make_handler(
            secret=options["secret"], status=options["status"], out=self.stdout
        )
        server = ThreadingHTTPServer((options["host"], options["port"]), handler)
        host, port = server.server_address[:2]
        self.stdout.write(
            f"Receiving webhooks on http://{host}:{port}/ (answering "
            f"{options['status']}); Ctrl-C to stop.\n"
        )
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            sys.stdout.flush()
