from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "cfm.web"
    label = "web"
    verbose_name = "cfm pages"

    def ready(self) -> None:
        # The Celery app, made the current app of this process: without it a task's
        # .delay() from a view would go to Celery's default broker, not cfm's. It used
        # to be imported by cfm/__init__.py, which made the engine need Celery.
        from cfm import celery  # noqa: F401
