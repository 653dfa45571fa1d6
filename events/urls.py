from django.urls import path

from events import views

urlpatterns = [
    path("api/v1/events", views.PublishEventView.as_view(), name="events-publish"),
    path(
        "batch/api/v1/events",
        views.PublishEventBatchView.as_view(),
        name="events-publish-batch",
    ),
    path(
        "api/v1/events/<str:event_id>",
        views.EventLogView.as_view(),
        name="events-detail",
    ),
    path(
        "api/v1/event-types",
        views.EventTypeListView.as_view(),
        name="event-types",
    ),
]
