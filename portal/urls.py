from django.urls import path, re_path

from portal import api, views

# Included at the site root: the API path and the pages under /portal/.
# `<str:id>`: a malformed id is the same 404 page as another client's.
urlpatterns = [
    path(
        "api/v1/portal-sessions",
        api.PortalSessionView.as_view(),
        name="portal-sessions",
    ),
    path("portal/enter/<str:token>", views.enter, name="portal-enter"),
    path("portal/", views.webhook_list, name="portal-webhooks"),
    path("portal/sign-out", views.sign_out, name="portal-sign-out"),
    path("portal/webhooks/new", views.webhook_create, name="portal-webhook-create"),
    path("portal/webhooks/<str:id>", views.webhook_detail, name="portal-webhook"),
    path(
        "portal/webhooks/<str:id>/test", views.webhook_test, name="portal-webhook-test"
    ),
    path(
        "portal/webhooks/<str:id>/resume",
        views.webhook_resume,
        name="portal-webhook-resume",
    ),
    path(
        "portal/webhooks/<str:id>/rotate-secret",
        views.webhook_rotate_secret,
        name="portal-webhook-rotate",
    ),
    path(
        "portal/webhooks/<str:id>/delete",
        views.webhook_delete,
        name="portal-webhook-delete",
    ),
    path("portal/events", views.events, name="portal-events"),
    path("portal/events/replay", views.events_replay, name="portal-events-replay"),
    path("portal/event-types", views.event_types, name="portal-event-types"),
    # Any other portal path: the portal's 404 page, not the API's envelope.
    re_path(r"^portal/", views.unknown_page),
]
