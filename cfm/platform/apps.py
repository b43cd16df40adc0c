from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "cfm.platform"
    label = "platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        from cfm.accounts import hooks as account_hooks
        from cfm.jobs.runtime import register
        from cfm.quota import backends
        from cfm.registry.services import registration_deleted

        from .jobs import TrackDeployment
        from .services import deployment_remove, deployment_start

        register(TrackDeployment())
        backends.install(start=deployment_start, remove=deployment_remove)
        registration_deleted.connect(_staging_delete, dispatch_uid="cfm.platform.cleanup")
        # A space's connection: in the Space JSON and on the Spaces page, and gone with the space.
        account_hooks.add("connection_json", _connection_json)
        account_hooks.add("connections", _connections)
        account_hooks.add("space_deleting", _connection_drop)


def _connection_json(space) -> dict | None:
    from .models import Connection
    from .services import connection_body

    return connection_body(Connection.objects.filter(space=space).first())


def _connections(spaces) -> dict:
    from .models import Connection

    return {c.space_id: c for c in Connection.objects.filter(space__in=list(spaces))}


def _connection_drop(space) -> None:
    """A deleted space keeps its row (its deployments' history): the cascade does not fire, so its
    connection, secrets included, is deleted here."""
    from .models import Connection

    Connection.objects.filter(space=space).delete()


def _staging_delete(sender, *, deployment_ids: list[int], **_kwargs) -> None:
    """Folders fetched for its deployments' uploads (normally gone once uploaded)."""
    import shutil

    from .tracking import staging_root

    for dep_id in deployment_ids:
        shutil.rmtree(staging_root() / f"dep-{dep_id}", ignore_errors=True)
