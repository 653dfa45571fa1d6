"""Portal fixtures: a browser-like test client in a client's portal session;
the web process, a worker and Chromium for the browser tests."""

import sys
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
from django.db import connections
from django.test import Client as BrowserClient

# The real service processes of the end-to-end tests, for the browser tests.
from tests.integration.conftest import (  # noqa: F401
    service_database_url,
    stack,
    stack_factory,
)


def open_link(browser: BrowserClient, api) -> None:
    """Ask for a portal link with the API key and open it in `browser`."""
    response = api.post("/api/v1/portal-sessions")
    assert response.status_code == 201, response.content
    entered = browser.get(urlsplit(response.json()["url"]).path)
    assert entered.status_code == 302, entered.content


@pytest.fixture
def portal(api) -> BrowserClient:
    """Client `acme`'s browser, in its portal session, with CSRF checks on
    (as a real browser gets them)."""
    browser = BrowserClient(enforce_csrf_checks=True)
    open_link(browser, api)
    return browser


@pytest.fixture
def live_portal(stack, monkeypatch):  # noqa: F811 - the imported fixture
    """The web process (gunicorn, as the Procfile runs it) against the test
    database, over plain http: base URL. Cookies are not Secure-only here
    (there is no https), as on a developer's machine."""
    from tests.support.ports import free_port
    from tests.support.waiting import wait_until

    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes between page actions are synchronous all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    port = free_port()
    stack.start_web(
        port=port, CSRF_COOKIE_SECURE="false", SESSION_COOKIE_SECURE="false"
    )
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urlopen(f"{base_url}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    wait_until(healthy, timeout=60, interval=0.1, message="the web process")
    return base_url


@pytest.fixture
def chromium():
    """Debian's chromium driven by playwright, as scripts/screenshots.py
    launches it (playwright's own browser download is not used)."""
    from playwright.sync_api import sync_playwright

    from tests.support.paths import ROOT

    sys.path.insert(0, str(ROOT / "scripts"))
    import screenshots

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=screenshots.CHROMIUM, args=screenshots.CHROMIUM_ARGS
        )
        yield browser
        browser.close()
        # While playwright's loop runs, Django keeps this thread's connections
        # per context: close them here, or the test database cannot be dropped.
        connections.close_all()


def portal_link(api, base_url: str) -> str:
    """A fresh portal link for the API key's client, on the live server."""
    response = api.post("/api/v1/portal-sessions")
    assert response.status_code == 201, response.content
    return base_url + urlsplit(response.json()["url"]).path
