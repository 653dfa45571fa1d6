"""The one view of the publish ceiling (and GET /health for start-up)."""

import json
import uuid

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from bench.ceiling import TABLE


@csrf_exempt
def publish(request: HttpRequest) -> HttpResponse:
    body = json.loads(request.body)
    event_id = uuid.uuid4()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (id, body, created_at) VALUES (%s, %s, %s)",
            [event_id, json.dumps(body), timezone.now()],
        )
    return JsonResponse({"id": str(event_id), "deliveries": 0}, status=202)


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("api/v1/events", publish),
    path("health", health),
]
