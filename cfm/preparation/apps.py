from django.apps import AppConfig


class PreparationConfig(AppConfig):
    name = "cfm.preparation"
    label = "preparation"
    verbose_name = "Model preparation"

    def ready(self) -> None:
        from cfm.jobs.runtime import register

        from .jobs import Prepare

        register(Prepare())
