from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QuotaConfig(AppConfig):
    name = "cfm.quota"
    label = "quota"
    verbose_name = _("Quota and deployments")

    def ready(self) -> None:
        from cfm.accounts import hooks as account_hooks
        from cfm.registry import hooks

        from .selectors import registration_live_deployments, space_live_counts, space_live_deployments

        # A model that still runs cannot be deleted: its page lists what runs, up front.
        hooks.add_detail_context("live_deployments", registration_live_deployments)
        # Nor a space that holds deployments.
        account_hooks.add("live_deployments", space_live_deployments)
        account_hooks.add("live_counts", space_live_counts)
