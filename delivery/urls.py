from django.urls import path

from delivery import views

# `<str:id>`: a malformed id is answered by the view with the envelope's 404.
urlpatterns = [
    path(
        "api/v1/webhooks/<str:id>/test",
        views.WebhookTestView.as_view(),
        name="webhook-test",
    ),
    path(
        "api/v1/webhooks/<str:id>/deliveries",
        views.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "api/v1/webhooks/<str:id>/replay",
        views.WebhookReplayView.as_view(),
        name="webhook-replay",
    ),
    # Before deliveries/<str:id>, which would take "bulk-retry" for an id.
    path(
        "api/v1/deliveries/bulk-retry",
        views.BulkRetryView.as_view(),
        name="deliveries-bulk-retry",
    ),
    path(
        "api/v1/deliveries/<str:id>",
        views.DeliveryDetailView.as_view(),
        name="delivery-detail",
    ),
    path(
        "api/v1/deliveries/<str:id>/retry",
        views.DeliveryRetryView.as_view(),
        name="delivery-retry",
    ),
]
