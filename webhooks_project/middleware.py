"""Django's browser middleware (sessions, the signed-in user, messages),
skipped by requests to the HTTP API.

API clients authenticate with a key (subscriptions/auth.py), never with a
session cookie, and no API view reads a session, the session's user or
messages: for them these three only cost (bench/RESULTS.md, "Browser
middleware off the API path"). The admin and the customer portal, which use
them, get them as before.

Each class subclasses Django's own, so the admin's system checks (admin.E408
to E410) still find them. CSRF stays Django's own middleware everywhere:
`check --deploy` asks for it by name, and API views are exempt from it.
"""

from collections.abc import Callable

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponse

# The HTTP API's paths (API.md): /api/v1/…, /batch/api/v1/…, and the schema
# and its docs page under /api/.
API_PREFIXES = ("/api/", "/batch/api/")


class _BrowserOnly:
    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PREFIXES):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_BrowserOnly, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages.MessageMiddleware):
    pass
