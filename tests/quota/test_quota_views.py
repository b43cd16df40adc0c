"""The quota pages with three users each: the owner, the owner of another
account (404, as for an id that does not exist) and an anonymous visitor
(sent to log in)."""
from __future__ import annotations

import re

import pytest
from quotafactory import make_registration, timeseries_report

from cfm.quota import services
from cfm.quota.models import Deployment, LedgerEntry


def _deploy(actor, reg, name, conf="small"):
    return services.deployment_request(user=actor.user, registration=reg, space=actor.space, configuration=conf,
                                       serving_name=name).deployment


def _form(client, reg):
    page = client.get(f"/quota/registrations/{reg.id}/deploy/")
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page.content.decode()).group(1)
    return page, key


@pytest.fixture
def pages(owner, llama):
    dep = _deploy(owner, llama, "page_dep")
    acc = owner.account.id
    return [f"/quota/{acc}/usage/", f"/quota/{acc}/limit-request/", f"/quota/registrations/{llama.id}/deploy/",
            f"/quota/deployments/{dep.id}/", f"/feedback/{acc}/survey/"]


def test_every_quota_page_answers_the_owner_hides_from_a_stranger_and_sends_anonymous_to_login(
        client, owner, stranger, pages):
    for url in pages:
        client.force_login(owner.user)
        assert client.get(url).status_code == 200, url
        client.force_login(stranger.user)
        assert client.get(url).status_code == 404, url
        client.logout()
        r = client.get(url)
        assert r.status_code == 302 and "/login/" in r["Location"], url


def test_ids_that_do_not_exist_are_404_like_a_strangers(client, owner):
    client.force_login(owner.user)
    for url in ("/quota/999999/usage/", "/quota/registrations/999999/deploy/", "/quota/deployments/999999/"):
        assert client.get(url).status_code == 404


def test_the_form_reserves_once_when_submitted_twice_and_shows_the_platform_requests(client, owner, llama):
    client.force_login(owner.user)
    page, key = _form(client, llama)
    assert b"Reserve and prepare the deployment" in page.content
    data = {"space": owner.space.id, "configuration": "small", "software_spec": llama.report["software_specs"][0],
            "serving_name": "from_form", "idempotency_key": key, "param_dtype": "bfloat16",
            "param_max_new_tokens": "1024"}
    first = client.post(f"/quota/registrations/{llama.id}/deploy/", data)
    second = client.post(f"/quota/registrations/{llama.id}/deploy/", data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Deployment.objects.count() == 1 and LedgerEntry.objects.count() == 1
    detail = client.get(first["Location"]).content.decode()
    assert "custom_foundation_model_1.0" in detail and "gpu_s" in detail and "bfloat16" in detail


def test_errors_are_shown_on_the_fields_and_nothing_is_reserved(client, owner, llama):
    client.force_login(owner.user)
    _page, key = _form(client, llama)
    r = client.post(f"/quota/registrations/{llama.id}/deploy/", {
        "space": owner.space.id, "configuration": "small", "software_spec": llama.report["software_specs"][0],
        "serving_name": "ok_name", "idempotency_key": key, "param_max_new_tokens": "10"})
    html = r.content.decode()
    assert r.status_code == 422
    assert 'aria-invalid="true"' in html and "at least 20" in html
    assert not Deployment.objects.exists()


def test_hitting_the_limit_shows_what_the_account_holds_the_need_and_the_three_choices(client, owner, llama):
    for i in range(3):
        _deploy(owner, llama, f"held_{i}")
    client.force_login(owner.user)
    _page, key = _form(client, llama)
    r = client.post(f"/quota/registrations/{llama.id}/deploy/", {
        "space": owner.space.id, "configuration": "medium", "software_spec": llama.report["software_specs"][0],
        "serving_name": "one_more", "idempotency_key": key})
    html = r.content.decode()
    assert r.status_code == 409
    assert "3 of 4 units" in html and "held_0" in html and "held_2" in html
    assert "2 units" in html  # what a Medium needs
    assert "Delete a deployment" in html and "Request a limit increase" in html
    assert "not guaranteed" in html and f"/feedback/{owner.account.id}/survey/?refusal=" in html


def test_a_time_series_form_has_no_parameters(client, owner):
    reg = make_registration(owner.account, timeseries_report())
    client.force_login(owner.user)
    page, _key = _form(client, reg)
    html = page.content.decode()
    assert "take no parameters" in html and "param_max_batch_size" not in html
    assert "Extra large" in html


def test_the_usage_page_shows_the_gauge_deployments_ledger_and_answers(client, owner, staff, llama):
    _deploy(owner, llama, "shown_here", "medium")
    req = services.limit_request_create(user=owner.user, account=owner.account, units=8, reason="launch")
    services.limit_request_deny(user=staff.user, request=req, answer="Capacity is full until May.")
    client.force_login(owner.user)
    html = client.get(f"/quota/{owner.account.id}/usage/").content.decode()
    assert "<svg" in html and 'aria-label="2 of 4 units used"' in html
    assert "shown_here" in html and "Capacity is full until May." in html and "Reserve" in html
    assert f"/feedback/{owner.account.id}/survey/" in html


def test_delete_from_the_page_frees_units_and_a_stranger_cannot(client, owner, stranger, llama):
    dep = _deploy(owner, llama, "to_delete")
    client.force_login(stranger.user)
    assert client.post(f"/quota/deployments/{dep.id}/delete/").status_code == 404
    client.force_login(owner.user)
    assert client.post(f"/quota/deployments/{dep.id}/delete/").status_code == 302
    assert services.quota_usage(account=owner.account).used_units == 0


def test_a_limit_request_from_the_page_is_recorded(client, owner):
    client.force_login(owner.user)
    r = client.post(f"/quota/{owner.account.id}/limit-request/", {"units": 3, "reason": "x"})
    assert r.status_code == 200 and b'aria-invalid="true"' in r.content
    r = client.post(f"/quota/{owner.account.id}/limit-request/", {"units": 8, "reason": "Launch in June"})
    assert r.status_code == 302
    assert owner.account.limit_requests.get().units == 8


def test_the_capacity_page_is_for_staff_only(client, owner, staff):
    client.force_login(staff.user)
    html = client.get("/quota/capacity/").content.decode()
    assert "<svg" in html and "Refused deployment requests" in html
    client.force_login(owner.user)
    assert client.get("/quota/capacity/").status_code == 404
    client.logout()
    assert client.get("/quota/capacity/").status_code == 404


def test_a_registration_still_being_inspected_cannot_be_deployed_yet(client, owner):
    from cfm.registry.models import Registration

    reg = Registration.objects.create(account=owner.account, source_kind="hub", source="org/pending",
                                      status="inspecting")
    client.force_login(owner.user)
    html = client.get(f"/quota/registrations/{reg.id}/deploy/").content.decode()
    assert "has not finished yet" in html and "Reserve and prepare" not in html


def test_the_limit_request_page_says_when_the_same_request_is_pending(client, owner):
    pending = services.limit_request_create(user=owner.user, account=owner.account, units=8, reason="launch")
    client.force_login(owner.user)
    r = client.post(f"/quota/{owner.account.id}/limit-request/", {"units": 8, "reason": "launch, again"})
    assert r.status_code == 200 and "already waiting for an answer" in r.content.decode()
    assert str(pending.id) in r.content.decode() and owner.account.limit_requests.count() == 1


def test_the_limit_request_page_bounds_units_and_reason_like_the_api(client, owner):
    client.force_login(owner.user)
    url = f"/quota/{owner.account.id}/limit-request/"
    for data, field in (({"units": 10_001, "reason": "x"}, "units"), ({"units": 8, "reason": "r" * 2_001}, "reason")):
        html = client.post(url, data).content.decode()
        assert f'id="id_{field}_error"' in html, field
    page = client.get(url).content.decode()
    assert 'maxlength="2000"' in page and 'max="10000"' in page
    assert client.post(url, {"units": 10_000, "reason": "r" * 2_000}).status_code == 302


def test_a_lite_account_is_told_it_cannot_ask_for_a_limit(client, owner):
    owner.account.plan = "lite"
    owner.account.save()
    client.force_login(owner.user)
    r = client.post(f"/quota/{owner.account.id}/limit-request/", {"units": 8, "reason": "launch"})
    assert r.status_code == 200 and "Standard plan" in r.content.decode()
    assert not owner.account.limit_requests.exists()


def test_the_deploy_form_refuses_a_parameter_beyond_the_catalogs_range_on_its_field(client, owner, llama):
    from cfm import catalog

    client.force_login(owner.user)
    page, key = _form(client, llama)
    assert f'max="{catalog.PARAMETER_MAXIMUM}"' in page.content.decode()
    r = client.post(f"/quota/registrations/{llama.id}/deploy/", {
        "space": owner.space.id, "configuration": "small", "software_spec": llama.report["software_specs"][0],
        "serving_name": "n12", "idempotency_key": key, "param_max_batch_size": "99999999999999999999999"})
    html = r.content.decode()
    assert r.status_code == 422 and f"from 1 to {catalog.PARAMETER_MAXIMUM}" in html
    assert "id_param_max_batch_size_error" in html
    assert not Deployment.objects.exists()
