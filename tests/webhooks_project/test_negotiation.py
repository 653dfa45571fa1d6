"""webhooks_project/negotiation.py: the shortcut answers as DRF does."""

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from webhooks_project.negotiation import ContentNegotiation

ACCEPTS = [
    None,
    "",
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/*",
    "text/html, */*;q=0.1",
    "text/html",
    "application/xml",
]


def _request(accept: str | None, query: str = "") -> Request:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(APIRequestFactory().get(f"/api/v1/events{query}", **headers))


def _choice(negotiation, request, renderers):
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except NotAcceptable:
        return "406"
    except Http404:  # ?format= names no renderer of the view
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api"])
@pytest.mark.parametrize(
    "renderers", [[JSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()]]
)
def test_the_same_renderer_and_media_type_as_drf(accept, query, renderers):
    ours = _choice(ContentNegotiation(), _request(accept, query), renderers)
    drf = _choice(DefaultContentNegotiation(), _request(accept, query), renderers)

    assert ours == drf


def test_an_unacceptable_accept_header_is_still_a_406(client):
    response = client.get("/api/v1/event-types", HTTP_ACCEPT="text/html")

    assert response.status_code == 406
