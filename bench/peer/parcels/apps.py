from django.apps import AppConfig


class ParcelsConfig(AppConfig):
    name = "bench.peer.parcels"
    label = "parcels"
