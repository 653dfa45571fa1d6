from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from subscriptions.auth import hash_key
from subscriptions.models import ApiKey, Client

pytestmark = pytest.mark.django_db


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_creates_the_client_and_prints_the_key_alone_on_the_last_line():
    out, err = _run("--client", "acme")

    key = out.strip().splitlines()[-1]
    assert key == key.strip() and " " not in key and key.startswith("whk_")
    client = Client.objects.get(name="acme")
    api_key = ApiKey.objects.get(client=client)
    assert api_key.key_hash == hash_key(key)
    assert api_key.scopes == ["subscriptions"]
    assert key not in err


def test_the_printed_key_authenticates():
    out, _ = _run("--client", "acme")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {out.strip().splitlines()[-1]}")

    assert api.get("/api/v1/webhooks/").status_code == 200


def test_a_publish_key_may_not_manage_webhooks():
    out, _ = _run("--client", "platform", "--scope", "publish")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {out.strip().splitlines()[-1]}")

    assert ApiKey.objects.get().scopes == ["publish"]
    assert api.get("/api/v1/webhooks/").status_code == 403


def test_a_second_key_for_an_existing_client_reuses_the_client():
    _run("--client", "acme")
    _run("--client", "acme", "--scope", "subscriptions", "--scope", "publish")

    assert Client.objects.filter(name="acme").count() == 1
    assert sorted(ApiKey.objects.values_list("scopes", flat=True)) == [
        ["publish", "subscriptions"],
        ["subscriptions"],
    ]


@pytest.mark.parametrize("name", ["", "   ", "x" * 41])
def test_a_bad_client_name_is_refused(name):
    with pytest.raises(CommandError):
        _run("--client", name)

    assert not Client.objects.exists()


def test_tenant_binds_a_publish_key_to_existing_tenants():
    Client.objects.create(name="acme")
    Client.objects.create(name="globex")

    _, err = _run(
        "--client",
        "carrier",
        "--scope",
        "publish",
        "--tenant",
        "acme",
        "--tenant",
        "globex",
    )

    api_key = ApiKey.objects.get(client__name="carrier")
    assert sorted(t.name for t in api_key.tenants.all()) == ["acme", "globex"]
    assert "bound to tenants acme, globex" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--scope", "publish", "--tenant", "nobody"),
            "no tenant named nobody",
            id="unknown tenant",
        ),
        pytest.param(("--tenant", "acme"), "publish scope", id="not a publish key"),
    ],
)
def test_a_bad_tenant_binding_is_refused_and_creates_nothing(args, message):
    Client.objects.create(name="acme")

    with pytest.raises(CommandError, match=message):
        _run("--client", "carrier", *args)

    assert not ApiKey.objects.exists()
