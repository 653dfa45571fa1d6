"""The OpenAPI schema describes the events endpoints as docs/api.md does."""


def _ref(content: dict) -> str:
    return content["content"]["application/json"]["schema"]["$ref"].split("/")[-1]


def test_publish_is_described_with_its_answers_and_errors(schema):
    operation = schema["paths"]["/api/v1/events"]["post"]

    assert _ref(operation["requestBody"]) == "PublishEventRequest"
    responses = operation["responses"]
    assert _ref(responses["202"]) == _ref(responses["200"]) == "PublishedEvent"
    errors = {
        code: _ref(responses[code])
        for code in ("400", "401", "403", "413", "415", "429")
    }
    assert set(errors.values()) == {"Error"}
    assert "Idempotency-Key" in [p["name"] for p in operation["parameters"]]
    request = schema["components"]["schemas"]["PublishEventRequest"]
    assert request["required"] == ["type"]
    assert request["properties"]["payload"]["type"] == "object"
    assert request["properties"]["resource_url"]["maxLength"] == 500
    published = schema["components"]["schemas"]["PublishedEvent"]
    assert set(published["properties"]) == {"id", "deliveries"}


def test_the_event_log_and_catalogue_are_described(schema):
    log = schema["paths"]["/api/v1/events/{event_id}"]["get"]["responses"]
    assert _ref(log["200"]) == "EventLog"
    assert _ref(log["404"]) == "Error"
    event_log = schema["components"]["schemas"]["EventLog"]["properties"]
    assert set(event_log) == {
        "id",
        "type",
        "subtype",
        "resource_id",
        "resource_url",
        "user_id",
        "tenant",
        "payload",
        "occurred_at",
        "created",
        "deliveries",
    }
    delivery = schema["components"]["schemas"]["EventDelivery"]["properties"]
    assert set(delivery) == {
        "id",
        "webhook_id",
        "status",
        "attempts_count",
        "last_status_code",
        "last_error",
    }
    types = schema["paths"]["/api/v1/event-types"]["get"]["responses"]["200"]
    items = types["content"]["application/json"]["schema"]["items"]["$ref"]
    assert items.endswith("/EventType")


def test_the_event_list_is_described_on_the_publish_path(schema):
    operation = schema["paths"]["/api/v1/events"]["get"]

    assert operation["operationId"] == "list_events"
    assert _ref(operation["responses"]["200"]) == "EventPage"
    assert _ref(operation["responses"]["400"]) == "Error"
    names = {p["name"] for p in operation["parameters"]}
    assert names >= {"type", "since", "until", "resource_id", "status", "cursor"}
    [status] = [p for p in operation["parameters"] if p["name"] == "status"]
    assert status["schema"]["enum"] == ["expired", "failed", "pending", "succeeded"]
    summary = schema["components"]["schemas"]["EventSummary"]["properties"]
    assert "deliveries" in summary and "payload" in summary
    counts = schema["components"]["schemas"]["DeliveryCounts"]["properties"]
    assert set(counts) == {
        "total",
        "pending",
        "held",
        "succeeded",
        "failed",
        "expired",
        "cancelled",
    }
