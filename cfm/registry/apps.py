from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "cfm.registry"
    label = "registry"
    verbose_name = "Model registrations"
