import pytest
from django.core import checks
from django.http import HttpResponse
from django.test import RequestFactory

from webhooks_project import middleware

BROWSER = [
    (middleware.AuthenticationMiddleware, "user"),
    (middleware.MessageMiddleware, "_messages"),
]


def _seen(middleware_class, path):
    seen = []

    def view(request):
        seen.append(request)
        return HttpResponse("ok")

    request = RequestFactory().get(path)
    request.session = {}  # what SessionMiddleware, earlier in the chain, sets
    response = middleware_class(view)(request)
    assert response.status_code == 200
    return seen[0]


@pytest.mark.parametrize(("middleware_class", "attribute"), BROWSER)
@pytest.mark.parametrize(
    "path", ["/api/v1/events", "/api/v1/webhooks/x/deliveries", "/batch/api/v1/events"]
)
def test_api_requests_skip_the_browser_middleware(middleware_class, attribute, path):
    assert not hasattr(_seen(middleware_class, path), attribute)


@pytest.mark.parametrize(("middleware_class", "attribute"), BROWSER)
@pytest.mark.parametrize(
    "path", ["/admin/", "/portal/", "/portal/enter/t", "/health", "/apis", "/batch/x"]
)
def test_other_requests_get_it_as_django_gives_it(middleware_class, attribute, path):
    assert hasattr(_seen(middleware_class, path), attribute)


def test_the_admins_system_checks_find_the_subclasses():
    errors = checks.run_checks(tags=[checks.Tags.admin])

    assert [e.id for e in errors if e.id in ("admin.E408", "admin.E409")] == []
