from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "cfm.workers"
    label = "workers"
    verbose_name = "cfm workers"
