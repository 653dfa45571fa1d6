from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from delivery.ops.dashboard import dashboard_view
from delivery.ops.metrics import metrics_view
from webhooks_project import errors, health

# The schema and its browser are public: they describe, they expose nothing.
_public = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    # First: POST /api/v1/events is most of the traffic, and each pattern
    # tried before it costs a regex match per request.
    path("", include("events.urls")),
    # Before admin/: the admin's catch-all would answer it with a 404.
    path(
        "admin/dashboard/",
        admin.site.admin_view(dashboard_view),
        name="admin_dashboard",
    ),
    path("admin/", admin.site.urls),
    path("health", health.health, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(**_public), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", **_public),
        name="docs",
    ),
    path("", include("subscriptions.urls")),
    path("", include("delivery.urls")),
    path("", include("portal.urls")),
    # Last: every other path is a 404 in the error envelope.
    re_path(r"^(?P<path>.*)$", errors.unknown_url),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.not_found
handler500 = errors.server_error
