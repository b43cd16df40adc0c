"""Words a reader found wrong, one test each: "1 are free", "1 units",
"has reached its deployment limit" at 3 of 4 units, a default limit that
stayed 4 after an administrator set 8, times in UTC with no zone, English on
the Japanese catalog, Extra large offered for an LLM, and the rules version
written two ways on one page."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse
from quotafactory import make_registration, timeseries_report

from cfm import catalog
from cfm.quota import services
from cfm.quota.models import QuotaSettings, Refusal

JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}


def _deploy(actor, reg, name, conf="small"):
    return services.deployment_request(user=actor.user, registration=reg, space=actor.space, configuration=conf,
                                       serving_name=name).deployment


def _refused(client, owner, reg, conf):
    page = client.get(f"/quota/registrations/{reg.id}/deploy/").content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)
    r = client.post(f"/quota/registrations/{reg.id}/deploy/", {
        "space": owner.space.id, "configuration": conf, "software_spec": reg.report["software_specs"][0],
        "serving_name": f"more_{conf}", "idempotency_key": key})
    assert r.status_code == 409
    return r.content.decode()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_a_refusal_below_the_limit_does_not_say_the_limit_is_reached_and_counts_in_the_right_number(
        client, owner, llama):
    for i in range(3):
        _deploy(owner, llama, f"held_{i}")
    client.force_login(owner.user)
    text = _text(_refused(client, owner, llama, "medium"))  # 3 of 4 used, Medium needs 2
    assert "reached its deployment limit" not in text
    assert "does not fit in the account's free units" in text
    assert "This deployment needs 2 units; 1 is free." in text and "1 are free" not in text


def test_at_the_limit_it_says_so_and_that_none_is_free(client, owner, llama):
    for i in range(4):
        _deploy(owner, llama, f"held_{i}")
    client.force_login(owner.user)
    text = _text(_refused(client, owner, llama, "small"))
    assert "This account has reached its deployment limit" in text
    assert "This deployment needs 1 unit; none is free." in text and "1 units" not in text


def test_one_free_unit_is_singular_on_the_deploy_form(client, owner, llama):
    for i in range(3):
        _deploy(owner, llama, f"held_{i}")
    client.force_login(owner.user)
    text = _text(client.get(f"/quota/registrations/{llama.id}/deploy/").content.decode())
    assert "1 of 4 units free" in text


def test_the_usage_page_reads_the_default_limit_an_administrator_set(client, owner):
    row = QuotaSettings.current()
    row.default_limit_units = 8
    row.save()
    client.force_login(owner.user)
    text = _text(client.get(f"/quota/{owner.account.id}/usage/").content.decode())
    assert "By default an account may use 8 units" in text and "may use 4 units" not in text
    row.default_limit_units = 1
    row.save()
    text = _text(client.get(f"/quota/{owner.account.id}/usage/").content.decode())
    assert "By default an account may use 1 unit," in text


def test_times_are_in_the_readers_zone_with_the_zone_named(client, owner, llama):
    dep = _deploy(owner, llama, "timed")
    client.force_login(owner.user)
    html = client.get(f"/quota/{owner.account.id}/usage/").content.decode()
    utc = dep.created_at.strftime("%Y-%m-%d %H:%M")
    assert f"{utc} UTC</time>" in html  # no cookie yet: UTC, and it says so
    client.cookies["cfm_tz"] = "Asia/Tokyo"
    html = client.get(f"/quota/{owner.account.id}/usage/").content.decode()
    from zoneinfo import ZoneInfo
    tokyo = dep.created_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
    assert f"{tokyo} JST</time>" in html
    client.cookies["cfm_tz"] = "Not/AZone"  # ignored, not an error
    assert f"{utc} UTC</time>" in client.get(f"/quota/{owner.account.id}/usage/").content.decode()


def test_the_llm_survey_does_not_offer_extra_large(client, owner, llama, ttm):
    client.force_login(owner.user)
    for i in range(4):
        _deploy(owner, llama, f"held_{i}")
    _refused(client, owner, llama, "small")
    refusal = Refusal.objects.filter(account=owner.account).latest("id")
    html = client.get(f"/feedback/{owner.account.id}/survey/?refusal={refusal.id}").content.decode()
    assert 'value="small"' in html and 'value="extra_large"' not in html
    r = client.post(f"/feedback/{owner.account.id}/survey/", {
        "refusal": refusal.id, "configuration": "extra_large", "count": 1, "model": "m", "use_case": "u",
        "timeline": "now", "comments": ""})
    assert r.status_code == 200 and "extra_large is not one of the available choices" in r.content.decode()
    # from the usage page, about no model in particular: offered, saying what it is for
    html = client.get(f"/feedback/{owner.account.id}/survey/").content.decode()
    assert "Extra large (time-series models only)" in html


@pytest.mark.django_db
def test_the_japanese_catalog_has_no_english_runtime_name(client):
    html = client.get(reverse("catalog"), **JA).content.decode()
    assert "time-series runtime" not in html and "時系列ランタイム" in html


def test_the_rules_version_is_written_one_way(client, owner, llama):
    client.force_login(owner.user)
    html = client.get(reverse("registration", args=[llama.id])).content.decode()
    versions = re.findall(r'<span class="rules-version">([^<]+)</span>', html)
    assert versions == [f"rules {catalog.RULES_VERSION}"] * 2  # the report's card and the footer
    home = client.get(reverse("home")).content.decode()
    assert set(re.findall(r'<span class="rules-version">([^<]+)</span>', home)) == {f"rules {catalog.RULES_VERSION}"}


def test_a_time_series_model_still_gets_extra_large_in_its_survey(client, owner):
    ts = make_registration(owner.account, timeseries_report("extra_large"), source="org/ttm")
    client.force_login(owner.user)
    for i in range(4):
        _deploy(owner, ts, f"ts_{i}", conf="small")
    _refused(client, owner, ts, "extra_large")
    refusal = Refusal.objects.filter(account=owner.account).latest("id")
    html = client.get(f"/feedback/{owner.account.id}/survey/?refusal={refusal.id}").content.decode()
    assert 'value="extra_large"' in html and "(time-series models only)" not in html


@pytest.mark.parametrize("units", [1, 3])
def test_the_unit_costs_list_pluralizes(client, owner, units):
    from cfm.quota.models import UnitCost

    UnitCost.objects.update_or_create(configuration="medium", defaults={"units": units})
    client.force_login(owner.user)
    text = _text(client.get(f"/quota/{owner.account.id}/usage/").content.decode())
    assert f"Medium {units} unit{'s' if units != 1 else ''}" in text
