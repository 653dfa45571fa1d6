from django.urls import path

from subscriptions import views

# Exact paths only: /api/v1/webhooks/{id}/test and /deliveries live in
# delivery.urls, and a non-UUID id falls through to the envelope's 404.
# docs/api.md writes `POST /api/v1/webhooks` and `GET /api/v1/webhooks/`; both
# paths take both methods, and the schema shows each method where docs/api.md does.
urlpatterns = [
    path("api/v1/webhooks", views.WebhookCreateView.as_view(), name="webhooks"),
    path("api/v1/webhooks/", views.WebhookListView.as_view(), name="webhooks-list"),
    path(
        "batch/api/v1/webhooks",
        views.WebhookBatchCreateView.as_view(),
        name="webhooks-batch",
    ),
    path(
        "batch/api/v1/webhooks/",
        views.WebhookBatchCreateSlashView.as_view(),
        name="webhooks-batch-slash",
    ),
    path(
        "api/v1/webhooks/<uuid:id>",
        views.WebhookDetailView.as_view(),
        name="webhook-detail",
    ),
    path(
        "api/v1/webhooks/<uuid:id>/resume",
        views.WebhookResumeView.as_view(),
        name="webhook-resume",
    ),
    path(
        "api/v1/notification-settings",
        views.NotificationSettingsView.as_view(),
        name="notification-settings",
    ),
    path(
        "api/v1/webhooks/<uuid:id>/rotate-secret",
        views.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
]
