from webhooks_project.celery import app as celery_app

__all__ = ["celery_app"]
__version__ = "1.0.0"
