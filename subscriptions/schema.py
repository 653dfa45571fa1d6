"""OpenAPI (drf-spectacular) extensions: the Bearer API-key security scheme."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "subscriptions.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "`Authorization: Bearer <api key>`; create a key with "
                "`manage.py create_api_key --client NAME [--scope publish]`."
            ),
        }
