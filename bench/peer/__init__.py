"""The peer: django-webhook (PyPI), the way its documentation says to use it,
in the bench's own virtualenv (bench/peers.py makes it), on the Procfile's
web and worker lines (same gunicorn and Celery settings as the service).

A publisher's event is a `parcels.Parcel` row: POST /api/v1/events creates
one, django-webhook's post_save receiver enqueues `fire_webhook` for every
webhook on the topic `parcels.Parcel/create`, and its Celery worker POSTs it.
Nothing here imports the service.
"""

from bench.peer.celery import app

__all__ = ["app"]
