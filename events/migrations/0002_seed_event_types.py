"""Seed the event-type catalogue with the events of the products this service
was drawn from: parcel tracking, customs declarations, loyalty and rewards."""

from django.db import migrations

CATALOGUE = [
    # Parcel tracking (Event Cast).
    (
        "DELIVERED",
        [],
        True,
        "The parcel or shipment was delivered. Ends trackingId webhooks.",
    ),
    ("IN_TRANSIT", [], False, "The parcel moved on its way to the recipient."),
    (
        "DEVIATION",
        [],
        False,
        "Something unexpected happened to the parcel (delay, damage).",
    ),
    ("READY_FOR_PICKUP", [], False, "The parcel is waiting at a pickup point."),
    (
        "RETURNED",
        [],
        True,
        "The parcel was returned to the sender. Ends trackingId webhooks.",
    ),
    ("NOTIFICATION_SENT", [], False, "The recipient was notified about the parcel."),
    ("PRE_NOTIFIED", [], False, "The sender announced the shipment electronically."),
    # Customs declarations (CAS).
    (
        "STATUS_CHANGED",
        [
            "DRAFT",
            "SUBMITTED",
            "ACCEPTED",
            "UNDER_CONTROL",
            "RELEASED",
            "REJECTED",
            "CANCELLED",
            "INVALIDATED",
            "CLOSED",
        ],
        False,
        "A declaration changed status; subscribe to one status with STATUS_CHANGED:RELEASED.",
    ),
    (
        "DOCUMENT_GENERATED",
        ["SAD", "EAD", "COO", "T2L", "TAD", "INVOICE"],
        False,
        "A document was generated for a declaration (SAD, EAD, COO, T2L, ...).",
    ),
    ("INGESTION_FAILED", [], False, "A shipment could not be ingested."),
    (
        "SHIPMENT_REPLACED",
        ["SUCCEEDED", "FAILED"],
        False,
        "A customs shipment was replaced.",
    ),
    ("DUTIES_RECEIVED", [], False, "Customs duties were received."),
    (
        "GUARANTEE_THRESHOLD_REACHED",
        [],
        False,
        "A transit guarantee reached its threshold.",
    ),
    # Loyalty and rewards (Capillary, RaaS).
    ("CUSTOMER_ADDED", [], False, "A customer was registered."),
    (
        "CUSTOMER_UPDATED",
        [],
        False,
        "A customer's details changed; fetch them from the API.",
    ),
    ("TRANSACTION_ADDED", [], False, "A transaction was recorded."),
    ("TRANSACTION_UPDATED", [], False, "A transaction changed; fetch it from the API."),
    ("TRANSACTION_COMPLETED", [], False, "A reward transaction completed."),
    ("POINTS_ISSUED", [], False, "Loyalty points were issued to a customer."),
    ("POINTS_REDEEMED", [], False, "A customer redeemed loyalty points."),
    ("TIER_UPGRADED", [], False, "A customer moved to a higher tier."),
    (
        "CIP_TAG_STATUS_CHANGED",
        [],
        False,
        "The status of one or more CIP tags changed.",
    ),
]


def seed(apps, schema_editor):
    EventType = apps.get_model("events", "EventType")
    for name, subtypes, terminal, description in CATALOGUE:
        EventType.objects.update_or_create(
            name=name,
            defaults={
                "subtypes": subtypes,
                "terminal": terminal,
                "description": description,
            },
        )


def unseed(apps, schema_editor):
    EventType = apps.get_model("events", "EventType")
    EventType.objects.filter(name__in=[row[0] for row in CATALOGUE]).delete()


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
