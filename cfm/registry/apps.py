from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "cfm.registry"
    label = "registry"
    verbose_name = "Model registrations"

    def ready(self) -> None:
        from cfm.jobs.runtime import register

        from .jobs import Inspection

        register(Inspection())
