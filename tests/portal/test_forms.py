"""The portal's forms as the API's request bodies."""

import pytest
from django.http import QueryDict

from portal import forms


def _form(text: str) -> QueryDict:
    return QueryDict(text)


def test_a_create_form_becomes_the_apis_body_without_its_blank_fields():
    form = _form(
        "url=https://a.example/in&event_groups=DELIVERED&event_groups=IN_TRANSIT"
        "&tracking_id=&profile=raas&delivery_ttl=+2h+&content_type="
        "&headers=X-Token%3A+abc%0D%0A%0D%0AX-Other%3Ab%3Ac"
    )

    assert forms.webhook_body(form) == {
        "event_groups": ["DELIVERED", "IN_TRANSIT"],
        "configuration": {
            "url": "https://a.example/in",
            "profile": "raas",
            "delivery_ttl": "2h",
            "headers": [
                {"key": "X-Token", "value": "abc"},
                {"key": "X-Other", "value": "b:c"},
            ],
        },
    }


def test_a_header_line_without_a_colon_names_its_line():
    with pytest.raises(forms.HeaderLinesError, match="line 2: write it as Name: value"):
        forms.header_lines("X-A: 1\nX-B 2")


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("2026-12-06T06:30", "2026-12-06T06:30Z"),
        ("2026-12-06T06:30:15", "2026-12-06T06:30:15Z"),
        ("2026-12-06T06:30:15+01:00", "2026-12-06T06:30:15+01:00"),
        ("yesterday", "yesterday"),
    ],
)
def test_datetime_local_values_are_utc_and_anything_else_is_left_to_the_api(
    given, sent
):
    assert forms.replay_body(_form(f"since={given.replace('+', '%2B')}")) == {
        "since": sent
    }
    assert forms.event_query(_form(f"until={given.replace('+', '%2B')}")) == {
        "until": sent
    }


def test_the_apis_errors_go_under_their_fields_and_in_a_summary():
    errors = {
        "configuration.url": ["must be an http or https URL with a host"],
        "configuration.headers.0.key": ["Host: reserved header name"],
        "body": ["An identical webhook already exists."],
    }

    assert forms.errors_by_field(errors, forms.WEBHOOK_FIELDS) == {
        "url": ["must be an http or https URL with a host"],
        "headers": ["configuration.headers.0.key: Host: reserved header name"],
        "": ["An identical webhook already exists."],
    }
    assert forms.error_summary(errors) == [
        "configuration.url: must be an http or https URL with a host",
        "configuration.headers.0.key: Host: reserved header name",
        "An identical webhook already exists.",
    ]
