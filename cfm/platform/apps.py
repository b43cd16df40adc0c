from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "cfm.platform"
    label = "platform"
    verbose_name = "Platform"
