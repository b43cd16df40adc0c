"""The staff side: approve/deny limit requests (never for one's own account),
ledger adjustments and verification, releases, survey CSV."""
from __future__ import annotations

import pytest
from quotafactory import make_actor

from cfm.feedback.models import SurveyResponse
from cfm.quota import services
from cfm.quota.models import EntryKind, LedgerEntry, LimitRequest


@pytest.fixture
def admin_user(db):
    actor = make_actor("root", staff=True)
    actor.user.is_superuser = True
    actor.user.save()
    return actor


def _action(client, model, action, ids, **extra):
    return client.post(f"/admin/quota/{model}/", {"action": action, "_selected_action": ids, **extra}, follow=True)


def test_admin_pages_render_with_cfm_branding(client, admin_user, owner, llama):
    services.deployment_request(user=owner.user, registration=llama, space=owner.space, serving_name="adm")
    client.force_login(admin_user.user)
    for url in ("/admin/", "/admin/quota/accountquota/", "/admin/quota/ledgerentry/", "/admin/quota/limitrequest/",
                "/admin/quota/deployment/", "/admin/quota/refusal/", "/admin/quota/unitcost/",
                "/admin/feedback/surveyresponse/"):
        r = client.get(url)
        assert r.status_code == 200, url
        assert b"cfm-admin.css" in r.content and b"cfm-mark" in r.content
    html = client.get("/admin/quota/accountquota/").content.decode()
    assert "Alice team" in html and 'title="1 / 4"' in html
    assert client.get("/admin/quota/ledgerentry/add/").status_code == 403


def test_approving_writes_a_grant_and_the_owner_sees_it(client, admin_user, owner):
    req = services.limit_request_create(user=owner.user, account=owner.account, units=6, reason="launch")
    client.force_login(admin_user.user)
    page = _action(client, "limitrequest", "approve", [req.id])
    assert b"writes a grant" in page.content
    _action(client, "limitrequest", "approve", [req.id], apply="1", answer="Granted for the launch.")
    req.refresh_from_db()
    assert req.status == "approved" and req.grant.kind == EntryKind.GRANT and req.grant.units == 2
    assert services.quota_usage(account=owner.account).limit_units == 6
    client.force_login(owner.user)
    assert b"Granted for the launch." in client.get(f"/quota/{owner.account.id}/usage/").content


def test_a_staff_member_cannot_approve_their_own_accounts_increase(client, admin_user):
    req = services.limit_request_create(user=admin_user.user, account=admin_user.account, units=8, reason="me")
    client.force_login(admin_user.user)
    page = _action(client, "limitrequest", "approve", [req.id], apply="1", answer="")
    assert b"cannot approve an increase for your own account" in page.content
    req.refresh_from_db()
    assert req.status == "pending" and not LedgerEntry.objects.filter(kind=EntryKind.GRANT).exists()


def test_denying_needs_a_reason_that_the_account_sees(client, admin_user, owner):
    req = services.limit_request_create(user=owner.user, account=owner.account, units=6, reason="launch")
    client.force_login(admin_user.user)
    _action(client, "limitrequest", "deny", [req.id], apply="1", answer="")
    assert LimitRequest.objects.get().status == "pending"
    _action(client, "limitrequest", "deny", [req.id], apply="1", answer="No capacity in May.")
    assert LimitRequest.objects.get().status == "denied"
    client.force_login(owner.user)
    assert b"No capacity in May." in client.get(f"/quota/{owner.account.id}/usage/").content


def test_adjust_verify_and_release_from_the_admin(client, admin_user, owner, llama):
    dep = services.deployment_request(user=owner.user, registration=llama, space=owner.space,
                                      serving_name="rel").deployment
    client.force_login(admin_user.user)
    _action(client, "accountquota", "adjust_limit", [owner.account.id], apply="1", units="2", reason="pilot")
    entry = LedgerEntry.objects.get(kind=EntryKind.ADJUST)
    assert (entry.units, entry.reason, entry.actor) == (2, "pilot", admin_user.user)
    page = _action(client, "accountquota", "verify_ledger", [owner.account.id])
    assert b"the ledger balances" in page.content
    _action(client, "deployment", "release", [dep.id])
    dep.refresh_from_db()
    assert not dep.is_active and services.ledger_verify(account=owner.account).ok
    assert services.quota_usage(account=owner.account).used_units == 0


def test_survey_answers_export_as_csv_without_formula_injection(client, admin_user, owner):
    SurveyResponse.objects.create(account=owner.account, user=owner.user, configuration="large", count=3,
                                  model="=HYPERLINK(1)", use_case="コード補完", timeline="month")
    client.force_login(admin_user.user)
    ids = list(SurveyResponse.objects.values_list("id", flat=True))
    r = client.post("/admin/feedback/surveyresponse/", {"action": "export_csv", "_selected_action": ids})
    assert r["Content-Type"].startswith("text/csv")
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("id,created_at,account")
    assert "'=HYPERLINK(1)" in text and "コード補完" in text
    assert client.get("/admin/feedback/surveyresponse/?configuration__exact=large").status_code == 200


def test_the_ledger_has_an_adjustment_page_and_a_verification_page(client, admin_user, owner, staff):
    client.force_login(admin_user.user)
    assert b"Adjust a limit" in client.get("/admin/quota/ledgerentry/").content
    r = client.post("/admin/quota/ledgerentry/adjust/", {"account": owner.account.id, "units": "-1",
                                                         "reason": "trial ended"})
    assert r.status_code == 302
    assert services.quota_usage(account=owner.account).limit_units == 3
    page = client.get("/admin/quota/ledgerentry/verify/").content.decode()
    assert "Every ledger balances" in page and "Alice team" in page
    client.force_login(staff.user)  # staff without the admin permissions
    assert client.get("/admin/quota/ledgerentry/adjust/").status_code == 403
