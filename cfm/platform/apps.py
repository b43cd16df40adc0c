from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "cfm.platform"
    label = "platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        from cfm.jobs.runtime import register
        from cfm.quota import backends
        from cfm.registry.services import registration_deleted

        from .jobs import TrackDeployment
        from .services import deployment_remove, deployment_start

        register(TrackDeployment())
        backends.install(start=deployment_start, remove=deployment_remove)
        registration_deleted.connect(_staging_delete, dispatch_uid="cfm.platform.cleanup")


def _staging_delete(sender, *, deployment_ids: list[int], **_kwargs) -> None:
    """Folders fetched for its deployments' uploads (normally gone once uploaded)."""
    import shutil

    from .tracking import staging_root

    for dep_id in deployment_ids:
        shutil.rmtree(staging_root() / f"dep-{dep_id}", ignore_errors=True)
