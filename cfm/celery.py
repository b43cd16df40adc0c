"""The Celery app. Redis is the broker when REDIS_URL is set; otherwise the
embedded filesystem broker (one machine, for `make run` and development)."""
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cfm.settings")

app = Celery("cfm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def warm_worker_process(**_: object) -> None:
    """Each pool process loads the engine's Hub client and makes its SSL
    context before its first job, not during it (profiled at concurrency 8:
    13% and 4% of a first inspection's samples). The engine imports the Hub
    client lazily, so the parent's imports, inherited by the fork, lack it."""
    from cfm.inspection import engine, hub  # noqa: F401

    hub.warm()


def _heartbeat_signals() -> None:
    """Each worker writes a heartbeat row while it runs (cfm.workers.heartbeat)."""
    from celery.signals import worker_ready, worker_shutdown

    def ready(sender=None, **kwargs):
        from cfm.workers.heartbeat import on_worker_ready

        on_worker_ready(sender=sender)

    def shutdown(sender=None, **kwargs):
        from cfm.workers.heartbeat import on_worker_shutdown

        on_worker_shutdown(sender=sender)

    worker_ready.connect(ready, weak=False)
    worker_shutdown.connect(shutdown, weak=False)


_heartbeat_signals()
