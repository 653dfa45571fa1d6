"""Django's signed-in user and messages middleware, skipped by requests to
the HTTP API.

API clients authenticate with a key (subscriptions/auth.py), never with a
session, and no API view reads the session's user or messages: for them
these two only cost (bench/RESULTS.md, "Browser middleware off the API
path"). The admin and the customer portal, which use them, get them as
before.

Each class subclasses Django's own, so the admin's system checks (admin.E408
and E409) still find them. Sessions and CSRF stay Django's own classes:
`check --deploy` looks for them by name (security.W003, W010 to W012), and
for a request that reads no session and is CSRF-exempt they do little.
"""

from collections.abc import Callable

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
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


class AuthenticationMiddleware(_BrowserOnly, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages.MessageMiddleware):
    pass
