"""The ledger's arithmetic: every mix of sizes below, at and above the
limit; grants, adjustments, releases; a deployment keeps its units."""
from __future__ import annotations

import itertools

import pytest
from quotafactory import make_actor, make_registration, timeseries_report

from cfm import catalog
from cfm.quota import deployments, services
from cfm.quota.models import AppendOnlyError, EntryKind, LedgerEntry, Refusal, UnitCost

SIZES = catalog.GENERAL_CONFIGURATIONS
LIMIT = 4


def _deploy(actor, registration, configuration, name):
    return services.deployment_request(user=actor.user, registration=registration, space=actor.space,
                                       configuration=configuration, serving_name=name)


def _mixes_up_to(limit):
    costs = catalog.UNIT_COSTS
    seen = set()
    for n in range(0, limit + 1):
        for combo in itertools.combinations_with_replacement(SIZES, n):
            if sum(costs[c] for c in combo) <= limit and combo not in seen:
                seen.add(combo)
                yield combo


def test_every_mix_of_sizes_fits_up_to_the_limit_and_the_next_one_only_if_it_still_fits(db):
    mixes = list(_mixes_up_to(LIMIT))
    assert ("small",) * 4 in mixes and ("medium", "medium") in mixes and ("large",) in mixes
    assert ("small", "small", "medium") in mixes
    for i, mix in enumerate(mixes):
        actor = make_actor(f"mix{i}")
        reg = make_registration(actor.account)
        for j, conf in enumerate(mix):
            _deploy(actor, reg, conf, f"d{j}")
        held = sum(catalog.UNIT_COSTS[c] for c in mix)
        usage = services.quota_usage(account=actor.account)
        assert (usage.used_units, usage.limit_units, usage.free_units) == (held, LIMIT, LIMIT - held)
        for extra in SIZES:
            fits = held + catalog.UNIT_COSTS[extra] <= LIMIT
            if fits:
                out = _deploy(actor, reg, extra, f"extra_{extra}")
                services.deployment_delete(user=actor.user, deployment=out.deployment)
            else:
                with pytest.raises(services.DeploymentRefused) as exc:
                    _deploy(actor, reg, extra, f"extra_{extra}")
                err = exc.value
                assert (err.status, err.code) == (409, "quota_exceeded")
                assert (err.extra["used_units"], err.extra["limit_units"], err.extra["needed_units"]) == (
                    held, LIMIT, catalog.UNIT_COSTS[extra])
                assert Refusal.objects.filter(pk=err.extra["refusal"], account=actor.account).exists()
        assert services.ledger_verify(account=actor.account).ok
        assert services.quota_usage(account=actor.account).used_units == held


def test_extra_large_time_series_needs_eight_units_and_fits_after_a_grant(owner, staff):
    reg = make_registration(owner.account, timeseries_report("extra_large"))
    with pytest.raises(services.DeploymentRefused) as exc:
        _deploy(owner, reg, "extra_large", "ts_xl")
    assert exc.value.extra["needed_units"] == 8
    req = services.limit_request_create(user=owner.user, account=owner.account, units=8, reason="forecasting")
    services.limit_request_approve(user=staff.user, request=req)
    out = _deploy(owner, reg, "extra_large", "ts_xl")
    assert out.deployment.units == 8
    usage = services.quota_usage(account=owner.account)
    assert (usage.used_units, usage.limit_units, usage.free_units) == (8, 8, 0)


def test_release_gives_back_exactly_the_units_reserved_even_after_costs_change(owner, llama):
    dep = _deploy(owner, llama, "medium", "m1").deployment
    UnitCost.objects.filter(configuration="medium").update(units=1)
    assert services.quota_usage(account=owner.account).used_units == 2
    assert _deploy(owner, llama, "medium", "m2").deployment.units == 1
    assert services.quota_usage(account=owner.account).used_units == 3
    assert services.deployment_delete(user=owner.user, deployment=dep)
    assert services.quota_usage(account=owner.account).used_units == 1
    assert not services.deployment_delete(user=owner.user, deployment=dep)  # twice: nothing more released
    assert services.ledger_verify(account=owner.account).ok


def test_a_deleted_deployments_serving_name_can_be_used_again(owner, llama):
    dep = _deploy(owner, llama, "small", "reuse_me").deployment
    with pytest.raises(services.DeploymentRefused) as exc:
        _deploy(owner, llama, "small", "reuse_me")
    assert exc.value.code == "serving_name_taken"
    services.deployment_delete(user=owner.user, deployment=dep)
    assert _deploy(owner, llama, "small", "reuse_me").deployment.pk != dep.pk


def test_limit_is_default_plus_grants_and_adjustments(owner, staff):
    services.ledger_adjust(user=staff.user, account=owner.account, units=3, reason="pilot")
    services.ledger_adjust(user=staff.user, account=owner.account, units=-1, reason="pilot trimmed")
    assert services.quota_usage(account=owner.account).limit_units == LIMIT + 2
    with pytest.raises(services.QuotaRuleError):
        services.ledger_adjust(user=staff.user, account=owner.account, units=2, reason=" ")


def test_ledger_entries_are_append_only(owner, llama):
    _deploy(owner, llama, "small", "s1")
    entry = LedgerEntry.objects.get(kind=EntryKind.RESERVE)
    entry.units = 0
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()


def test_ledger_verify_reports_a_deployment_changed_behind_the_ledgers_back(owner, llama):
    dep = _deploy(owner, llama, "small", "s1").deployment
    type(dep).objects.filter(pk=dep.pk).update(status="released")  # bypassing the service
    check = services.ledger_verify(account=owner.account)
    assert not check.ok and check.ledger_used == 1 and check.live_used == 0


def test_verifying_many_ledgers_takes_the_same_queries_for_3_or_12_accounts_and_names_the_broken_one(
        owner, llama, django_assert_max_num_queries):
    from quotafactory import llama_report

    from cfm.quota.models import Deployment

    actors = [owner] + [make_actor(f"user{i}") for i in range(11)]
    for i, actor in enumerate(actors):
        reg = llama if actor is owner else make_registration(actor.account, llama_report())
        dep = _deploy(actor, reg, "small", f"s{i}").deployment
        if i % 2:
            services.deployment_delete(user=actor.user, deployment=dep)
    broken = actors[4]
    Deployment.objects.filter(account=broken.account).update(status="released")  # behind the ledger's back
    for some in (actors[:3], actors):
        accounts = [a.account for a in some]
        with django_assert_max_num_queries(3):
            checks = services.ledger_verify_many(accounts=accounts)
        assert set(checks) == {a.pk for a in accounts}
    assert [pk for pk, check in checks.items() if not check.ok] == [broken.account.pk]
    assert (checks[broken.account.pk].ledger_used, checks[broken.account.pk].live_used) == (1, 0)
    assert all(checks[a.account.pk] == services.ledger_verify(account=a.account) for a in actors)
    assert checks[owner.account.pk].live_used == 1 and checks[actors[1].account.pk].live_used == 0


def test_a_member_cannot_approve_an_increase_for_their_own_account(owner, staff):
    owner.user.is_staff = True
    owner.user.save()
    req = services.limit_request_create(user=owner.user, account=owner.account, units=6, reason="more")
    with pytest.raises(services.QuotaRuleError):
        services.limit_request_approve(user=owner.user, request=req)
    req.refresh_from_db()
    assert req.status == "pending"
    services.limit_request_approve(user=staff.user, request=req, answer="ok for Q3")
    req.refresh_from_db()
    assert (req.status, req.grant.units, req.answer) == ("approved", 2, "ok for Q3")
    with pytest.raises(services.QuotaRuleError):  # answered once only
        services.limit_request_deny(user=staff.user, request=req, answer="no")


def test_a_denial_needs_a_reason_and_grants_nothing(owner, staff):
    req = services.limit_request_create(user=owner.user, account=owner.account, units=6, reason="more")
    with pytest.raises(services.QuotaRuleError):
        services.limit_request_deny(user=staff.user, request=req, answer="")
    services.limit_request_deny(user=staff.user, request=req, answer="No capacity this quarter.")
    assert services.quota_usage(account=owner.account).limit_units == LIMIT


def test_a_limit_request_must_ask_for_more_than_the_current_limit(owner):
    with pytest.raises(services.QuotaRuleError):
        services.limit_request_create(user=owner.user, account=owner.account, units=LIMIT, reason="same")


def test_deleting_a_registration_keeps_its_deployment_and_the_ledger_balanced(owner, llama):
    dep = _deploy(owner, llama, "small", "kept").deployment
    llama.delete()
    dep.refresh_from_db()
    assert dep.registration is None and dep.is_active
    assert services.quota_usage(account=owner.account).used_units == 1
    assert services.ledger_verify(account=owner.account).ok


def test_a_retry_whose_twin_commits_between_its_key_lookup_and_its_checks_is_replayed(owner, llama, monkeypatch):
    """The interleaving the concurrent test hits now and then, made certain:
    the first request with the key commits after the retry looked the key up
    (none yet) and before it checks the serving name (now taken)."""
    real = services.deployment_validate
    first = {}

    def validate_after_the_twin_commits(**kwargs):
        if not first:
            first["started"] = True
            first["outcome"] = services.deployment_request(
                user=owner.user, registration=llama, space=owner.space, serving_name="twin", idempotency_key="k-9")
        return real(**kwargs)

    # deployment_request calls the validation where it lives (cfm/quota/deployments.py)
    monkeypatch.setattr(deployments, "deployment_validate", validate_after_the_twin_commits)
    retry = services.deployment_request(user=owner.user, registration=llama, space=owner.space,
                                        serving_name="twin", idempotency_key="k-9")
    assert retry.replayed and retry.deployment.pk == first["outcome"].deployment.pk
    assert retry.body == first["outcome"].body
    assert services.quota_usage(account=owner.account).used_units == 1


def test_an_adjustment_cannot_take_the_limit_below_zero_and_grants_reach_the_approved_total(owner, staff):
    services.ledger_adjust(user=staff.user, account=owner.account, units=-4, reason="trial ended")
    assert services.quota_usage(account=owner.account).limit_units == 0
    with pytest.raises(services.QuotaRuleError) as refused:
        services.ledger_adjust(user=staff.user, account=owner.account, units=-1, reason="below zero")
    assert "below zero" in str(refused.value)
    assert services.ledger_totals(account=owner.account)[1] == -4  # nothing written
    req = services.limit_request_create(user=owner.user, account=owner.account, units=6, reason="more")
    services.limit_request_approve(user=staff.user, request=req)
    assert services.quota_usage(account=owner.account).limit_units == 6


def test_a_grant_after_the_default_limit_was_lowered_still_reaches_the_approved_total(owner, staff):
    services.ledger_adjust(user=staff.user, account=owner.account, units=-4, reason="trial ended")
    from cfm.quota.models import QuotaSettings

    QuotaSettings.objects.update_or_create(pk=1, defaults={"default_limit_units": 2})  # raw total now -2
    assert services.quota_usage(account=owner.account).limit_units == 0
    req = services.limit_request_create(user=owner.user, account=owner.account, units=3, reason="more")
    services.limit_request_approve(user=staff.user, request=req)
    assert services.quota_usage(account=owner.account).limit_units == 3
