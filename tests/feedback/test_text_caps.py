"""Every free-text field is capped, with one number for the form, the API
and the row (finding 6 of issue 11): cfm.textcaps.FREE_TEXT_MAX."""
from __future__ import annotations

import json

import pytest

from cfm.feedback.models import SurveyResponse
from cfm.quota import services
from cfm.quota.models import LedgerEntry, LimitRequest
from cfm.textcaps import FREE_TEXT_MAX

API = "/api/v1"
AT, OVER = "x" * FREE_TEXT_MAX, "x" * (FREE_TEXT_MAX + 1)


def _api(client, actor, url, body):
    return client.post(API + url, json.dumps(body), content_type="application/json", **actor.auth)


@pytest.mark.parametrize("field", ["use_case", "comments"])
def test_survey_text_over_the_cap_is_refused_by_the_api_and_the_page(client, owner, field):
    r = _api(client, owner, "/surveys", {"account": owner.account.id, "configuration": "small", field: OVER})
    assert r.status_code == 400 and field in r.json()["error"]["fields"]
    client.force_login(owner.user)
    page = client.post(f"/feedback/{owner.account.id}/survey/", {"configuration": "small", "count": 1,
                                                                 "timeline": "now", field: OVER})
    assert page.status_code in (200, 400) and field in page.context["form"].errors
    assert not SurveyResponse.objects.exists()
    ok = _api(client, owner, "/surveys", {"account": owner.account.id, "configuration": "small", field: AT})
    assert ok.status_code == 201


def test_a_limit_request_reason_over_the_cap_is_refused(client, owner):
    r = _api(client, owner, "/limit-requests", {"account": owner.account.id, "units": 9, "reason": OVER})
    assert r.status_code == 400 and "reason" in r.json()["error"]["fields"]
    assert not LimitRequest.objects.exists()


def test_staff_answers_and_ledger_reasons_are_capped_too(owner, staff):
    req = services.limit_request_create(user=owner.user, account=owner.account, units=8, reason="launch")
    with pytest.raises(services.QuotaRuleError):
        services.limit_request_deny(user=staff.user, request=req, answer=OVER)
    with pytest.raises(services.QuotaRuleError):
        services.ledger_adjust(user=staff.user, account=owner.account, units=1, reason=OVER)
    assert not LedgerEntry.objects.filter(kind="adjust").exists()
    assert LimitRequest.objects.get(pk=req.pk).status == "pending"


def test_the_admin_forms_say_so(client, owner, staff):
    staff.user.is_superuser = True
    staff.user.save()
    client.force_login(staff.user)
    r = client.post("/admin/quota/ledgerentry/adjust/", {"account": owner.account.pk, "units": 1, "reason": OVER})
    assert r.status_code == 200 and "reason" in r.context["form"].errors
