"""GET /api/v1/webhooks/ in pages: the body stays the contract's JSON list, the
next page is a `Link: <…>; rel="next"` header (WEBHOOK_LIST_PAGE_SIZE)."""

import importlib
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.apps import apps
from django.utils import timezone

from subscriptions.models import Subscription
from tests.support.api import HEADER_VALUE, assert_envelope, create
from tests.support.factories import SubscriptionFactory
from webhooks_project import crypto

pytestmark = pytest.mark.django_db

_NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


@pytest.fixture
def page_size(settings) -> int:
    settings.WEBHOOK_LIST_PAGE_SIZE = 10
    return 10


def _webhooks(client, count: int, *, start=None, **fields) -> list[Subscription]:
    """`count` webhooks a second apart, newest first from `start`; every third
    shares its neighbour's created_at, so pages must order by id as well."""
    start = start or timezone.now()
    rows = [
        SubscriptionFactory.build(
            client=client,
            created_at=start - timedelta(seconds=i - i % 3 // 2),
            expires_at=start + timedelta(days=1),
            **fields,
        )
        for i in range(count)
    ]
    return Subscription.objects.bulk_create(rows)


def _newest_first(rows) -> list[str]:
    return [str(r.id) for r in sorted(rows, key=lambda r: (r.created_at, r.id))][::-1]


def _next_url(response) -> str | None:
    link = response.get("Link")
    if link is None:
        return None
    match = _NEXT.match(link)
    assert match, link
    return match.group(1)


def _walk(api, path: str, *, between_pages=lambda: None) -> list[list[str]]:
    pages, url = [], path
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert isinstance(body, list)
        pages.append([w["id"] for w in body])
        url = _next_url(response)
        between_pages()
        assert len(pages) < 100, "the pages never end"
    return pages


def test_the_pages_walk_the_whole_set_once_newest_first(api, page_size):
    rows = _webhooks(api.client_obj, 35)

    pages = _walk(api, "/api/v1/webhooks/")

    assert [len(p) for p in pages] == [10, 10, 10, 5]
    assert [i for p in pages for i in p] == _newest_first(rows)


def test_a_set_that_fits_in_one_page_has_no_link(api, page_size):
    _webhooks(api.client_obj, 10)

    response = api.get("/api/v1/webhooks/")

    assert len(response.json()) == 10
    assert "Link" not in response


def test_the_link_is_absolute_and_keeps_the_other_parameters(api, page_size):
    rows = _webhooks(api.client_obj, 7, status="paused")
    _webhooks(api.client_obj, 3)

    first = api.get("/api/v1/webhooks/?status=paused&limit=4")

    assert len(first.json()) == 4  # a limit below the page size makes the page
    url = _next_url(first)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "http",
        "testserver",
        "/api/v1/webhooks/",
    )
    query = parse_qs(parts.query)
    assert query["status"] == ["paused"] and query["limit"] == ["4"]
    assert set(query) == {"status", "limit", "cursor"}
    second = api.get(url)
    assert [w["id"] for w in first.json() + second.json()] == _newest_first(rows)
    assert "Link" not in second


def test_the_page_size_caps_a_larger_limit(api, page_size):
    _webhooks(api.client_obj, 12)

    response = api.get("/api/v1/webhooks/?limit=150000")

    assert len(response.json()) == 10
    assert _next_url(response)


def test_pages_are_stable_under_concurrent_inserts(api, page_size):
    """Webhooks created while a client walks its list are newer than its
    cursor: the walk still sees each webhook it started with exactly once."""
    rows = _webhooks(api.client_obj, 25, start=timezone.now() - timedelta(minutes=1))
    created = []

    def someone_creates_more():
        created.extend(_webhooks(api.client_obj, 4))

    pages = _walk(api, "/api/v1/webhooks/", between_pages=someone_creates_more)

    walked = [i for p in pages for i in p]
    assert walked == _newest_first(rows)
    assert len(created) == 12
    # A new walk starts with them.
    assert _walk(api, "/api/v1/webhooks/")[0] == _newest_first(created)[:10]


def test_another_clients_cursor_shows_nothing_of_theirs(api, other_api, page_size):
    _webhooks(other_api.client_obj, 15)
    mine = _webhooks(api.client_obj, 3)
    their_next = _next_url(other_api.get("/api/v1/webhooks/"))

    response = api.get(their_next)

    assert response.status_code == 200
    assert set(w["id"] for w in response.json()) <= {str(r.id) for r in mine}


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "bm90IGEgY3Vyc29y",  # base64 of "not a cursor"
        "MjAyNi0wMS0wMVQwMDowMDowMHxub3QtYS11dWlk",  # a time without a zone, no uuid
        "",
    ],
)
def test_a_bad_cursor_is_a_400_in_the_envelope(api, cursor):
    response = api.get("/api/v1/webhooks/", {"cursor": cursor})

    payload = assert_envelope(response, 400)
    assert list(payload["errors"]) == ["cursor"]


def test_the_list_decrypts_nothing(api, body, monkeypatch):
    for tracking_id in ("A", "B"):
        assert create(api, {**body, "trackingId": tracking_id}).status_code == 201
    decrypted = []
    real_decrypt = crypto.decrypt
    monkeypatch.setattr(
        crypto, "decrypt", lambda token: decrypted.append(token) or real_decrypt(token)
    )

    response = api.get("/api/v1/webhooks/")

    assert [w["configuration"]["headers"] for w in response.json()] == [
        [{"key": "x-protection-header"}]
    ] * 2
    assert decrypted == []
    assert HEADER_VALUE.encode() not in response.content


def test_the_migration_fills_the_header_names_of_existing_rows():
    migration = importlib.import_module(
        "subscriptions.migrations.0007_subscription_header_names"
    )
    with_headers = SubscriptionFactory(
        headers=[{"key": "x-one", "value": "1"}, {"key": "X-Two", "value": "2"}]
    )
    without = SubscriptionFactory()
    Subscription.objects.update(header_names=[])

    migration.copy_header_names(apps, None)

    with_headers.refresh_from_db()
    without.refresh_from_db()
    assert with_headers.header_names == ["x-one", "X-Two"]
    assert without.header_names == []


def test_the_schema_documents_the_cursor_and_the_link_header(schema):
    operation = schema["paths"]["/api/v1/webhooks/"]["get"]

    assert {p["name"] for p in operation["parameters"]} == {"limit", "status", "cursor"}
    assert "rel=" in operation["responses"]["200"]["headers"]["Link"]["description"]
    assert (
        operation["responses"]["200"]["content"]["application/json"]["schema"]["type"]
        == "array"
    )
