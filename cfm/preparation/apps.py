from django.apps import AppConfig


class PreparationConfig(AppConfig):
    name = "cfm.preparation"
    label = "preparation"
    verbose_name = "Model preparation"

    def ready(self) -> None:
        from cfm.registry import hooks

        from .services import detail_partial_file

        hooks.add_detail_context("prepare_partial_file", detail_partial_file)
