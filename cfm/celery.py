"""The Celery app. Redis is the broker when REDIS_URL is set; otherwise the
embedded filesystem broker (one machine, for `make run` and development)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cfm.settings")

app = Celery("cfm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
