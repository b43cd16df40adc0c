"""The capacity survey the platform invites users to answer when they hit
the deployment limit: what they need, so capacity can be planned."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from cfm.accounts.models import Account
from cfm.quota.models import Configuration
from cfm.textcaps import FREE_TEXT_MAX, free_text_validators


class Timeline(models.TextChoices):
    NOW = "now", _("Now")
    MONTH = "month", _("Within a month")
    QUARTER = "quarter", _("Within three months")
    LATER = "later", _("Later this year")
    EXPLORING = "exploring", _("Just exploring")


#: how many deployments an answer may ask for: the form, the API and the row share one range
COUNT_MIN, COUNT_MAX = 1, 1000


class SurveyResponse(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="survey_responses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    #: the refused request that led here, when the survey came from the limit notice
    refusal = models.ForeignKey("quota.Refusal", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="survey_responses")
    configuration = models.CharField(_("configuration needed"), max_length=12, choices=Configuration.choices)
    count = models.PositiveIntegerField(_("how many deployments"), default=1,
                                        validators=[MinValueValidator(COUNT_MIN), MaxValueValidator(COUNT_MAX)])
    model = models.CharField(_("which model"), max_length=300, blank=True, default="")
    use_case = models.TextField(_("use case"), blank=True, default="", max_length=FREE_TEXT_MAX,
                                validators=free_text_validators())
    timeline = models.CharField(_("timeline"), max_length=10, choices=Timeline.choices, default=Timeline.NOW)
    comments = models.TextField(_("anything else"), blank=True, default="", max_length=FREE_TEXT_MAX,
                                validators=free_text_validators())
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("survey response")

    def __str__(self) -> str:
        return f"{self.account}: {self.count} × {self.configuration}"
