"""Admin pages that are not a model's: the operator's dashboard."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from delivery.dashboard import dashboard_figures


def dashboard(request: HttpRequest) -> HttpResponse:
    """Staff only: wrapped in admin.site.admin_view in the URLconf."""
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "figures": dashboard_figures(now=timezone.now()),
    }
    return TemplateResponse(request, "delivery/admin_dashboard.html", context)
