from django.apps import AppConfig


class PreparationConfig(AppConfig):
    name = "cfm.preparation"
    label = "preparation"
    verbose_name = "Model preparation"
