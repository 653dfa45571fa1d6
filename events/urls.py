from django.urls import path

from events import views

urlpatterns = [
    path("api/v1/events", views.PublishEventView.as_view(), name="events-publish"),
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
