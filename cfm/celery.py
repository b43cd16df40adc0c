"""The Celery app. Redis is the broker when REDIS_URL is set; otherwise the
embedded filesystem broker (one machine, for `make run` and development)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cfm.settings")

app = Celery("cfm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _heartbeat_signals() -> None:
    """Each worker writes a heartbeat row while it runs (cfm.web.heartbeat)."""
    from celery.signals import worker_ready, worker_shutdown

    def ready(sender=None, **kwargs):
        from cfm.web.heartbeat import on_worker_ready

        on_worker_ready(sender=sender)

    def shutdown(sender=None, **kwargs):
        from cfm.web.heartbeat import on_worker_shutdown

        on_worker_shutdown(sender=sender)

    worker_ready.connect(ready, weak=False)
    worker_shutdown.connect(shutdown, weak=False)


_heartbeat_signals()
