from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "cfm.jobs"
    label = "jobs"
    verbose_name = "Background jobs"
