"""Portal fixtures: a browser-like test client inside a client's portal session."""

from urllib.parse import urlsplit

import pytest
from django.test import Client as BrowserClient


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
