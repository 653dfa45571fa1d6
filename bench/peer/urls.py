"""The peer's publish endpoint: one Parcel per POST (its post_save fires the
webhooks), and GET /health for start-up."""

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bench.peer.parcels.models import Parcel


@csrf_exempt
def publish(request: HttpRequest) -> HttpResponse:
    body = json.loads(request.body)
    parcel = Parcel.objects.create(
        type=body["type"],
        resource_id=body.get("resource_id") or "",
        payload=body.get("payload") or {},
    )
    return JsonResponse({"id": str(parcel.pk), "deliveries": 1}, status=202)


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("api/v1/events", publish),
    path("health", health),
]
