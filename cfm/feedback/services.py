"""Writes for the capacity survey."""
from __future__ import annotations

from django.utils.translation import gettext as _

from cfm.accounts.models import Account
from cfm.quota.models import Refusal

from .models import SurveyResponse


class SurveyError(Exception):
    pass


def survey_submit(*, user, account: Account, refusal: Refusal | None = None, configuration: str, count: int = 1,
                  model: str = "", use_case: str = "", timeline: str = "now", comments: str = "") -> SurveyResponse:
    """Record an answer. The caller has scoped `account` to the user; a
    refusal of another account is the caller's 404, checked again here."""
    if refusal is not None and refusal.account_id != account.id:
        raise SurveyError(_("That refused request belongs to another account."))
    response = SurveyResponse(account=account, user=user, refusal=refusal, configuration=configuration,
                              count=count, model=model.strip(), use_case=use_case.strip(), timeline=timeline,
                              comments=comments.strip())
    response.full_clean()
    response.save()
    return response
