from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QuotaConfig(AppConfig):
    name = "cfm.quota"
    label = "quota"
    verbose_name = _("Quota and deployments")
