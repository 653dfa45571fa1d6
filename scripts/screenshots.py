"""Screenshots of the admin an operator works in and of the customer portal,
checked as they are taken.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/webhooks_screenshots \\
        python scripts/screenshots.py [OUT_DIR] [--fresh]

Against the database DATABASE_URL names (created if missing, dropped first
with --fresh; keep it a throwaway one), it migrates, writes sample data (a
few clients, webhooks, some paused, events, deliveries with failed and
retried attempts, an open circuit breaker) and a staff user, starts gunicorn
with DEBUG=false on a free 127.0.0.1 port, logs in through the admin login
form in Debian's chromium (driven by playwright) and saves PNGs of the
subscriptions list, a delivery with its attempts and the dashboard; then
opens a customer's portal link and saves each portal page (webhooks, on a
desktop and a phone, a webhook with its attempts, the create form with the
API's messages, events, event types, a reused link refused) into OUT_DIR
(default var/screenshots/).

Each page is checked: the text it must show, the stylesheet applied (the
computed style of the admin's #header or the portal's banner), and no
secret anywhere in its HTML. Exits 1 if any check fails, 2 if the app does
not start.
"""

import argparse
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/webhooks_screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Recognisable, so a leak into a page is caught by the check.
HEADER_VALUE = "screenshot-header-value-must-not-show"
CLIENT_SECRET = "screenshot-oauth2-client-secret-must-not-show"
STARTUP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Sample:
    """What the sample data is, for the checks."""

    username: str
    password: str
    failing_delivery_id: str
    secrets: list[str]
    # A one-time link into globex's portal, and globex's failing webhook.
    portal_link: str = ""
    failing_webhook_id: str = ""


@dataclass(frozen=True)
class Shot:
    name: str
    path: str
    expected: list[str]
    # The element the stylesheet must have styled (display flex, a background).
    styled: str = "#header"
    viewport: tuple[int, int] = (1600, 900)
    # The answer's status (a refused page is a 403).
    status: int = 200
    # Landmarks, one h1, and a label for every form control (the portal's
    # pages; the admin is Django's own).
    accessible: bool = False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", nargs="?", default=str(ROOT / "var/screenshots"))
    parser.add_argument(
        "--fresh", action="store_true", help="drop the database and start again"
    )
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    # DEBUG=false refuses to start without these (docs/deploy.md), migrate
    # included; fixed values, so a database kept from an earlier run still
    # decrypts.
    os.environ.update({**PRODUCTION_SETTINGS, **os.environ})
    _prepare_database(database_url, fresh=args.fresh)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
        # Seeding publishes events; no worker runs, so wake-ups go nowhere.
        "CELERY_BROKER_URL": "memory://",
    }
    os.environ.update(env)
    sample = _seed()
    with _web(env) as base_url:
        failures = _shoot(base_url, sample, out_dir)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    if not failures:
        print(f"screenshots in {out_dir}")
    return 1 if failures else 0


PRODUCTION_SETTINGS = {
    "SECRET_KEY": "screenshots-only-not-a-secret-0123456789",
    "WEBHOOK_ENCRYPTION_KEYS": "iHk3pL0AqgHkW9oIo6Q9l9y0aJ1cYcS1o2bqkSmH2xw=",
    "ALLOWED_HOSTS": "127.0.0.1",
}


def _prepare_database(database_url: str, *, fresh: bool) -> None:
    """Create the database if missing (drop it first if fresh), then migrate."""
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    connection = psycopg2.connect(server)
    connection.autocommit = True
    with connection.cursor() as cursor:
        if fresh:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
            )
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    connection.close()
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "false"}
    for command in (
        ["migrate", "--noinput", "-v", "0"],
        ["collectstatic", "--noinput", "-v", "0"],
    ):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True
        )


def _seed() -> Sample:
    """Sample data an operator would recognise, written through the services
    where they exist; attempt history is written as the workers record it."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from delivery.models import Attempt, Breaker, Delivery
    from delivery.sender.types import OAuth2Config
    from events.services import publish_event
    from portal.access import create_link
    from subscriptions import services
    from subscriptions.models import Subscription

    password = secrets.token_urlsafe(16)
    user, _ = User.objects.get_or_create(
        username="operator", defaults={"is_staff": True, "is_superuser": True}
    )
    user.set_password(password)
    user.save()

    if Subscription.objects.filter(client__name="umbrella").exists():
        print("FAIL the database has sample data already: use --fresh", file=sys.stderr)
        raise SystemExit(2)
    publisher, publisher_key = services.create_api_key(
        client_name="platform", scopes=["publish"], name="platform publisher"
    )
    exposed = [HEADER_VALUE, CLIENT_SECRET, publisher_key]
    webhooks: list[Subscription] = []
    plans = [
        (
            "acme-logistics",
            "https://hooks.acme-logistics.example/webhooks",
            ["DELIVERED", "IN_TRANSIT"],
        ),
        (
            "acme-logistics",
            "https://erp.acme-logistics.example/in/parcels",
            ["STATUS_CHANGED"],
        ),
        (
            "globex",
            "https://api.globex.example/v2/parcel-events",
            ["DELIVERED", "DEVIATION"],
        ),
        ("globex", "https://legacy.globex.example/hook.php", ["DELIVERED"]),
        ("initech", "https://initech.example/tps/webhook", ["IN_TRANSIT", "DELIVERED"]),
        ("umbrella", "https://events.umbrella.example/receive", ["DEVIATION"]),
    ]
    for client_name, url, groups in plans:
        client_key, plaintext = services.create_api_key(
            client_name=client_name, scopes=["subscriptions"], name="integration"
        )
        exposed.append(plaintext)
        sub = services.create_subscription(
            client=client_key.client,
            config=services.WebhookConfig(
                url=url,
                event_groups=groups,
                headers=[{"key": "x-api-token", "value": HEADER_VALUE}],
                oauth2=OAuth2Config(
                    token_url="https://idp.example/oauth/token",
                    client_id=f"{client_name}-hooks",
                    client_secret=CLIENT_SECRET,
                ),
            ),
        )
        exposed.append(sub.secret)
        webhooks.append(sub)

    now = timezone.now()
    failing = webhooks[3]
    Subscription.objects.filter(pk=webhooks[0].pk).update(last_success_at=now)
    Subscription.objects.filter(pk=webhooks[2].pk).update(
        last_success_at=now - timedelta(minutes=4), consecutive_failures=2
    )
    services.pause_subscription(
        subscription=webhooks[5], reason="paused by operator: receiver migration"
    )

    types = [
        ("DELIVERED", None, "PKG-10043"),
        ("IN_TRANSIT", None, "PKG-10044"),
        ("STATUS_CHANGED", "RELEASED", "DECL-2291"),
        ("DEVIATION", None, "PKG-10045"),
    ]
    tenants = ["acme-logistics", "globex", "initech", "umbrella"]
    with transaction.atomic():
        # Every tenant gets every type, so each webhook has deliveries.
        for n in range(len(types) * len(tenants)):
            event_type, subtype, resource = types[n % len(types)]
            publish_event(
                publisher=publisher.client,
                type=event_type,
                subtype=subtype,
                tenant=tenants[n // len(types)],
                resource_id=f"{resource}-{n}",
                payload={"parcel": f"{resource}-{n}", "depot": "Rotterdam"},
            )

    # History, as the workers would have recorded it.
    for delivery in Delivery.objects.filter(subscription__in=webhooks[:3]):
        Attempt.objects.create(
            delivery=delivery,
            number=1,
            at=now - timedelta(minutes=20),
            duration_ms=142,
            status_code=200,
            outcome=Attempt.Outcome.ACK,
            response_excerpt='{"received": true}',
        )
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.SUCCEEDED,
            attempts_count=1,
            delivered_at=now - timedelta(minutes=20),
            last_status_code=200,
            next_attempt_at=None,
        )
    failing_delivery = Delivery.objects.filter(subscription=failing).first()
    if failing_delivery is None:
        raise SystemExit("the sample events did not reach the failing webhook")
    history = [
        (
            503,
            Attempt.Outcome.FAILURE,
            211,
            "",
            "<html><body>503 Service Unavailable</body></html>",
        ),
        (None, Attempt.Outcome.FAILURE, 10004, "read timeout after 10.0s", ""),
        (429, Attempt.Outcome.RETRY, 38, "", '{"error": "rate limited"}'),
        (None, Attempt.Outcome.FAILURE, 3002, "connect timeout after 3.0s", ""),
    ]
    for number, (code, outcome, duration, error, excerpt) in enumerate(history, 1):
        Attempt.objects.create(
            delivery=failing_delivery,
            number=number,
            at=now - timedelta(minutes=40 - number * 8),
            duration_ms=duration,
            status_code=code,
            outcome=outcome,
            error=error or None,
            response_excerpt=excerpt or None,
        )
    Delivery.objects.filter(pk=failing_delivery.pk).update(
        attempts_count=len(history),
        backoff_step=len(history),
        last_status_code=None,
        last_error="connect timeout after 3.0s",
        next_attempt_at=now + timedelta(minutes=10),
    )
    Subscription.objects.filter(pk=failing.pk).update(
        consecutive_failures=4, last_failure_at=now
    )
    # A small backlog, as after a burst the workers have not caught up with.
    Delivery.objects.filter(subscription=webhooks[4], status="pending").update(
        next_attempt_at=now - timedelta(minutes=3)
    )
    Breaker.objects.update_or_create(
        destination="https://legacy.globex.example:443",
        defaults={
            "consecutive_failures": 5,
            "open_until": now + timedelta(seconds=30),
        },
    )
    link = create_link(client=failing.client)
    return Sample(
        username=user.username,
        password=password,
        failing_delivery_id=str(failing_delivery.pk),
        secrets=exposed + _stored_ciphertexts(),
        portal_link=f"/portal/enter/{link.token}",
        failing_webhook_id=str(failing.pk),
    )


def _stored_ciphertexts() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, headers, oauth2_client_secret, previous_secret "
            "FROM subscriptions_subscription"
        )
        stored = [value for row in cursor.fetchall() for value in row if value]
        cursor.execute("SELECT key_hash FROM subscriptions_apikey")
        stored += [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT link_hash FROM portal_portalsession")
        stored += [row[0] for row in cursor.fetchall()]
    return stored


@contextmanager
def _web(env: dict[str, str]) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gunicorn = Path(sys.executable).parent / "gunicorn"
    web = subprocess.Popen(
        [str(gunicorn), "webhooks_project.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if web.poll() is not None or time.monotonic() > deadline:
                    print("FAIL the web app did not start", file=sys.stderr)
                    raise SystemExit(2)
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        web.terminate()
        web.wait(timeout=10)


def _shoot(base_url: str, sample: Sample, out_dir: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    shots = [
        Shot(
            "subscriptions",
            "/admin/subscriptions/subscription/",
            [
                "Select subscription to change",
                "legacy.globex.example",
                "paused",
                "destination host",
                "consecutive failures",
                "event type",
            ],
        ),
        Shot(
            "delivery",
            f"/admin/delivery/delivery/{sample.failing_delivery_id}/change/",
            [
                "Attempts",
                "read timeout after 10.0s",
                "503 Service Unavailable",
                "connect timeout after 3.0s",
                "rate limited",
            ],
        ),
        Shot(
            "dashboard",
            "/admin/dashboard/",
            [
                "Dashboard",
                "attempts in the last hour",
                "due deliveries",
                "paused or disabled webhooks",
                "receiver migration",
                "https://legacy.globex.example:443",
            ],
        ),
    ]
    failures: list[str] = []
    portal = _portal_shots(sample)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.set_default_timeout(15_000)
        page.goto(f"{base_url}/admin/login/?next=/admin/")
        page.fill("#id_username", sample.username)
        page.fill("#id_password", sample.password)
        page.click("input[type=submit]")
        page.wait_for_load_state()
        if urlsplit(page.url).path != "/admin/":
            failures.append(f"login did not reach the admin index ({page.url})")
        elif "/admin/dashboard/" not in page.content():
            failures.append("the admin index does not link the dashboard")
        # The wide lists need the room of the collapsed navigation sidebar.
        page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        failures += _take(page, base_url, shots, sample, out_dir)
        # The customer's side, in a browser of its own (no admin login).
        customer = browser.new_page(viewport={"width": 1600, "height": 900})
        customer.set_default_timeout(15_000)
        customer.goto(f"{base_url}{sample.portal_link}")
        if urlsplit(customer.url).path != "/portal/":
            failures.append(f"the portal link did not open the portal ({customer.url})")
        failures += _take(customer, base_url, portal, sample, out_dir)
        browser.close()
    return failures


def _take(
    page: "Page", base_url: str, shots: list[Shot], sample: Sample, out_dir: Path
) -> list[str]:
    failures = []
    for shot in shots:
        width, height = shot.viewport
        page.set_viewport_size({"width": width, "height": height})
        if shot.path.startswith("POST "):
            _post_empty_create_form(page, base_url + shot.path.removeprefix("POST "))
            status = shot.status
        else:
            answer = page.goto(f"{base_url}{shot.path}")
            status = answer.status if answer else 0
        page.wait_for_load_state()
        if status != shot.status:
            failures.append(f"{shot.name}: status {status}, not {shot.status}")
        failures += [
            f"{shot.name}: {problem}" for problem in _check(page, shot, sample)
        ]
        target = out_dir / f"{shot.name}.png"
        page.screenshot(path=str(target), full_page=True)
        print(f"wrote {target}")
    return failures


def _post_empty_create_form(page: "Page", url: str) -> None:
    """The create form sent with a bad URL and no event group: the API's messages."""
    page.goto(url)
    page.fill("#url", "ftp://hooks.globex.example")
    with page.expect_navigation():
        page.click("main button[type=submit]")


def _portal_shots(sample: Sample) -> list[Shot]:
    def portal(name: str, path: str, expected: list[str], **kwargs) -> Shot:
        return Shot(
            f"portal-{name}",
            path,
            expected,
            styled="header.top",
            accessible=True,
            **kwargs,
        )

    webhook = f"/portal/webhooks/{sample.failing_webhook_id}"
    return [
        portal(
            "webhooks",
            "/portal/",
            ["Your webhooks", "legacy.globex.example", "Success, last 24 h"],
        ),
        portal(
            "webhooks-phone",
            "/portal/",
            ["Your webhooks", "api.globex.example"],
            viewport=(390, 844),
        ),
        portal(
            "webhook",
            webhook,
            [
                "Deliveries",
                "Send test event",
                "Rotate secret",
                "x-api-token",
                "read timeout after 10.0s",
                "503 Service Unavailable",
                "rate limited",
            ],
        ),
        portal(
            "create",
            "POST /portal/webhooks/new",
            [
                "New webhook",
                "Please correct the following",
                "must be an http or https URL with a host",
                "event_groups: may not be empty",
            ],
            status=400,
        ),
        portal("events", "/portal/events", ["Events", "DELIVERED", "Replay"]),
        portal(
            "event-types",
            "/portal/event-types",
            ["Event types", "STATUS_CHANGED", "The parcel or shipment was delivered"],
        ),
        portal(
            "refused",
            sample.portal_link,
            ["Access refused", "already been used"],
            status=403,
        ),
    ]


def _check(page: "Page", shot: Shot, sample: Sample) -> list[str]:
    """What is wrong with the page: missing text, a secret, no stylesheet."""
    problems = []
    html = page.content()
    text = page.inner_text("body")
    for expected in shot.expected:
        # Column headers are upper-cased by the stylesheet.
        if expected.lower() not in text.lower():
            problems.append(f"{expected!r} is not on the page")
    leaked = sum(secret in html for secret in sample.secrets)
    if leaked:
        # Never print any part of one.
        problems.append(f"a secret is in the HTML ({leaked} of them)")
    header = page.evaluate(
        "(selector) => { const h = document.querySelector(selector);"
        " if (!h) return null; const s = getComputedStyle(h);"
        " return {background: s.backgroundColor, display: s.display}; }",
        shot.styled,
    )
    if header is None:
        problems.append(f"there is no {shot.styled}")
    elif (
        header["background"] in ("rgba(0, 0, 0, 0)", "transparent")
        or header["display"] != "flex"
    ):
        problems.append(f"the stylesheet is not applied to {shot.styled} ({header})")
    if shot.accessible:
        problems += page.evaluate(_ACCESSIBILITY_PROBLEMS)
    return problems


# What a screen-reader or keyboard user would miss on the page.
_ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  if (document.querySelectorAll("main").length !== 1) problems.push("no one <main>");
  if (document.querySelectorAll("h1").length !== 1) problems.push("no one <h1>");
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  for (const el of document.querySelectorAll(
      "input:not([type=hidden]), select, textarea")) {
    if (!el.labels.length && !el.getAttribute("aria-label"))
      problems.push(`a ${el.tagName.toLowerCase()} without a label (${el.name})`);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!(el.textContent + (el.getAttribute("aria-label") || "")).trim())
      problems.push(`a ${el.tagName.toLowerCase()} without text`);
  }
  return problems;
}"""


if __name__ == "__main__":
    sys.exit(main())
