import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema() -> dict:
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_and_docs_are_served_without_a_key():
    client = APIClient()

    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3.")
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_the_schema_is_served_even_with_a_bad_key():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer nonsense")

    assert client.get("/api/schema/").status_code == 200


def test_the_schema_lists_every_webhook_endpoint_as_api_md_does(schema):
    paths = schema["paths"]
    expected = {
        "/api/v1/webhooks": {"post": "201"},
        "/api/v1/webhooks/": {"get": "200"},
        "/batch/api/v1/webhooks": {"post": "201"},
        "/api/v1/webhooks/{id}": {"get": "200", "delete": "204"},
        "/api/v1/webhooks/{id}/resume": {"post": "200"},
        "/api/v1/webhooks/{id}/rotate-secret": {"post": "200"},
    }
    for path, methods in expected.items():
        for method, success in methods.items():
            operation = paths[path][method]
            assert success in operation["responses"], (path, method)
            assert operation["security"] == [{"ApiKey": []}]
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (path, method, code)
    assert "409" in paths["/api/v1/webhooks"]["post"]["responses"]
    assert "409" in paths["/api/v1/webhooks/{id}/resume"]["post"]["responses"]
    assert "200" in paths["/api/v1/webhooks/{id}"]["delete"]["responses"]
    list_params = {p["name"] for p in paths["/api/v1/webhooks/"]["get"]["parameters"]}
    assert {"limit", "status"} <= list_params


def test_the_schema_describes_the_bearer_scheme_and_the_envelope(schema):
    components = schema["components"]
    assert components["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    error = components["schemas"]["Error"]
    assert set(error["properties"]) == {"uuid", "status", "reason", "errors"}
    assert set(error["required"]) == {"uuid", "status", "reason"}


def test_the_schema_shapes_match_the_webhook_object(schema):
    schemas = schema["components"]["schemas"]
    webhook = schemas["Webhook"]
    assert set(webhook["properties"]) == {
        "id",
        "authenticator",
        "trackingId",
        "event_groups",
        "configuration",
        "status",
        "created",
        "expiry",
        "paused_reason",
        "secret",
    }
    assert "secret" not in webhook["required"]
    assert "paused_reason" not in webhook["required"]
    shown_headers = schemas["HeaderName"]["properties"]
    assert set(shown_headers) == {"key"}
    assert "client_secret" not in schemas["OAuth2Out"]["properties"]
    request = schemas["WebhookCreateRequest"]
    assert set(request["properties"]) == {"trackingId", "event_groups", "configuration"}
    assert set(schemas["WebhookBatchCreateRequest"]["properties"]) == {
        "trackingIds",
        "event_groups",
        "configuration",
    }
    assert schemas["ConfigurationRequest"]["properties"]["url"]["maxLength"] == 250
    assert set(schemas["Secret"]["properties"]) == {"secret"}


def test_the_webhook_part_of_the_schema_validates_without_warnings(tmp_path):
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--urlconf",
        "tests.webhooks_project.webhook_urls",
        "--file",
        str(tmp_path / "schema.yaml"),
    )

    assert "/api/v1/webhooks" in (tmp_path / "schema.yaml").read_text()
