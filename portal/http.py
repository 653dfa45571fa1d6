"""What every portal response carries: the session check and the headers
that keep the pages out of caches, referrers and foreign frames."""

import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal import access
from subscriptions.models import Client

logger = logging.getLogger("webhooks.portal")

COOKIE_NAME = "webhooks_portal"
COOKIE_PATH = "/portal/"

View = Callable[..., HttpResponse]


def content_security_policy() -> str:
    ancestors = " ".join(settings.WEBHOOK_PORTAL_FRAME_ANCESTORS) or "'none'"
    return (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        f"form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )


def with_headers(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = content_security_policy()
    # Pages show a tenant's data, and once a new secret: never stored.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"
    if settings.WEBHOOK_PORTAL_FRAME_ANCESTORS:
        # frame-ancestors decides; XFrameOptionsMiddleware's DENY would override it.
        response.xframe_options_exempt = True  # type: ignore[attr-defined]
    return response


def page(
    request: HttpRequest, template: str, context: dict | None = None, status: int = 200
) -> HttpResponse:
    return with_headers(render(request, template, context or {}, status=status))


def refused(request: HttpRequest, reason: str, *, status: int = 403) -> HttpResponse:
    """The clear page of a refused link, session or form, never a stack trace."""
    response = page(request, "portal/refused.html", {"reason": reason}, status=status)
    # Logged here without the path: a refused link's path holds its token.
    logger.warning("portal request refused (%s): %s", status, reason)
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def not_found(request: HttpRequest) -> HttpResponse:
    """Another client's id and no id at all look the same."""
    return page(request, "portal/not_found.html", status=404)


def portal_client(request: HttpRequest) -> Client:
    return request.portal_client  # type: ignore[attr-defined]


def session_required(view: View) -> View:
    """The page's client from the session cookie, or the 403 page."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        client = access.session_client(cookie=request.COOKIES.get(COOKIE_NAME, ""))
        if client is None:
            return refused(
                request,
                "Your portal session has ended or was never opened. "
                "Open the portal again from your account on the platform.",
            )
        request.portal_client = client  # type: ignore[attr-defined]
        return with_headers(view(request, *args, **kwargs))

    return wrapped


def drop_session_cookie(response: HttpResponse) -> None:
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, samesite="Lax")


def set_session_cookie(
    request: HttpRequest, response: HttpResponse, opened: access.OpenedSession
) -> None:
    response.set_cookie(
        COOKIE_NAME,
        opened.cookie,
        expires=opened.expires_at,
        path=COOKIE_PATH,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
