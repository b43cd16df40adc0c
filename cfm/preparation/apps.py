from django.apps import AppConfig


class PreparationConfig(AppConfig):
    name = "cfm.preparation"
    label = "preparation"
    verbose_name = "Model preparation"

    def ready(self) -> None:
        from cfm.jobs.runtime import register
        from cfm.registry import hooks
        from cfm.registry.services import registration_deleted

        from .cleanup import registration_files_delete
        from .jobs import Prepare
        from .selectors import latest_prepared
        from .services import detail_partial_file

        register(Prepare())
        hooks.add_detail_context("prepare_partial_file", detail_partial_file)
        # The latest prepared copy is the model's current state on its page.
        hooks.add_detail_context("prepared", latest_prepared)
        registration_deleted.connect(registration_files_delete, dispatch_uid="cfm.preparation.cleanup")
