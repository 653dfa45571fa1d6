"""Only the webhook routes: `spectacular --fail-on-warn` judges this part alone."""

from django.urls import include, path

urlpatterns = [path("", include("subscriptions.urls"))]
