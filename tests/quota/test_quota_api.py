"""The HTTP API's deployment, usage and limit-request endpoints, exactly as
docs/api.md words them."""
from __future__ import annotations

import json

import pytest
from quotafactory import broken_report, make_registration, mistral_report, timeseries_report

from cfm import catalog
from cfm.quota.models import Deployment, LedgerEntry


def post(client, actor, url, body, **headers):
    return client.post(url, data=json.dumps(body), content_type="application/json", **actor.auth, **headers)


def deploy(client, actor, reg, name, **extra):
    headers = {}
    if "key" in extra:
        headers["HTTP_IDEMPOTENCY_KEY"] = extra.pop("key")
    body = {"registration": reg.id, "space": extra.pop("space", actor.space.id), "serving_name": name, **extra}
    return post(client, actor, "/api/v1/deployments", body, **headers)


def test_a_deployment_answers_201_with_the_recommendation_defaults_and_the_platform_requests(client, owner, llama):
    r = deploy(client, owner, llama, "llama_chat")
    assert r.status_code == 201, r.content
    d = r.json()
    assert {"id", "registration", "space", "configuration", "units", "software_spec", "serving_name", "parameters",
            "warnings", "created_at", "platform_request"} <= set(d)
    assert (d["configuration"], d["units"], d["software_spec"]) == ("small", 1, catalog.SPEC_VLLM)
    # vLLM does not use max_concurrent_requests: it is left out of the request
    assert d["parameters"] == {"dtype": "float16", "max_batch_size": 256, "max_new_tokens": 2048,
                               "max_sequence_length": 2048}
    asset, dep = d["platform_request"]["asset"], d["platform_request"]["deployment"]
    assert asset["type"] == "custom_foundation_model_1.0"
    assert asset["software_spec"] == {"name": catalog.SPEC_VLLM}
    # the platform's API for custom foundation models: the storage in foundation_model.model_location
    location = asset["foundation_model"]["model_location"]
    assert set(location["location"]) == {"bucket", "file_path"}
    assert "id" in location["connection"] and "content_location" not in asset
    assert dep["hardware_request"] == {"size": "gpu_s", "num_nodes": 1}
    assert dep["online"]["parameters"]["serving_name"] == "llama_chat"
    assert d["created_at"].endswith("Z")


def test_time_series_asks_for_a_hardware_spec_and_ignores_parameters_with_a_warning(client, owner):
    reg = make_registration(owner.account, timeseries_report("medium"))
    r = deploy(client, owner, reg, "ttm", parameters={"max_batch_size": 4})
    assert r.status_code == 201, r.content
    d = r.json()
    assert d["parameters"] == {} and d["units"] == 2
    assert [w["code"] for w in d["warnings"]] == ["parameters_ignored"]
    dep = d["platform_request"]["deployment"]
    assert dep["hardware_spec"] == {"name": "M", "num_nodes": 1} and "hardware_request" not in dep
    assert "foundation_model" not in dep["online"]["parameters"]


def test_the_same_idempotency_key_answers_the_same_201_and_reserves_once(client, owner, llama):
    first = deploy(client, owner, llama, "once", key="abc")
    again = deploy(client, owner, llama, "once", key="abc")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert LedgerEntry.objects.filter(kind="reserve").count() == 1
    other = deploy(client, owner, llama, "different", key="abc")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_the_same_key_after_a_quota_refusal_answers_the_same_409(client, owner, llama):
    for i in range(4):
        assert deploy(client, owner, llama, f"s{i}").status_code == 201
    first = deploy(client, owner, llama, "fifth", key="k5")
    again = deploy(client, owner, llama, "fifth", key="k5")
    assert first.status_code == again.status_code == 409
    assert first.json() == again.json()
    err = first.json()["error"]
    assert err["code"] == "quota_exceeded"
    assert (err["limit_units"], err["used_units"], err["needed_units"]) == (4, 4, 1)
    assert isinstance(err["refusal"], int)
    assert err["survey_url"].endswith(f"?refusal={err['refusal']}")
    assert f"/{owner.account.id}/" in err["increase_request_url"]


def test_a_taken_serving_name_is_a_409_serving_name_taken_even_when_the_account_is_full(client, owner, llama):
    for i in range(4):
        deploy(client, owner, llama, f"s{i}")
    r = deploy(client, owner, llama, "s0")
    assert r.status_code == 409 and r.json()["error"]["code"] == "serving_name_taken"


@pytest.mark.parametrize("case, status, code", [
    ("bad_name", 400, "invalid"),
    ("not_deployable", 422, "not_deployable"),
    ("runtime_missing", 422, "runtime_missing"),
    ("too_small", 422, "configuration_too_small"),
    ("not_tensor_parallel", 422, "configuration_not_allowed"),
    ("spec", 422, "spec_not_allowed"),
    ("parameters", 422, "invalid_parameters"),
    ("plan", 403, "plan_not_allowed"),
])
def test_invalid_requests_are_refused_with_the_contracts_codes(client, owner, llama, case, status, code):
    from cfm.accounts.models import Space

    reg, extra, name = llama, {}, "ok_name"
    if case == "bad_name":
        name = "Bad-Name!"
    elif case == "not_deployable":
        reg = make_registration(owner.account, broken_report())
    elif case == "runtime_missing":
        extra["space"] = Space.objects.create(account=owner.account, name="bare", runtime_instance=False).id
    elif case == "too_small":
        reg = make_registration(owner.account, {**llama.report, "configuration": "medium"})
        extra["configuration"] = "small"
    elif case == "not_tensor_parallel":
        reg = make_registration(owner.account, mistral_report())
        extra["configuration"] = "medium"
    elif case == "spec":
        extra["software_spec"] = catalog.SPEC_TSFM
    elif case == "parameters":
        extra["parameters"] = {"max_new_tokens": 4096, "max_sequence_length": 1024, "dtype": "int8"}
    elif case == "plan":
        owner.account.plan = "lite"
        owner.account.save()
    r = deploy(client, owner, reg, name, **extra)
    assert r.status_code == status, r.content
    err = r.json()["error"]
    assert err["code"] == code and err["message"]
    if case == "parameters":
        assert set(err["fields"]) == {"parameters.max_sequence_length", "parameters.dtype"}
    assert not Deployment.objects.exists()


def test_a_larger_configuration_is_allowed_for_tensor_parallel_architectures(client, owner, llama):
    r = deploy(client, owner, llama, "big", configuration="large", software_spec=catalog.SPEC_TGI,
               parameters={"max_concurrent_requests": 512, "max_batch_size": 128})
    assert r.status_code == 201, r.content
    d = r.json()
    assert (d["units"], d["platform_request"]["deployment"]["hardware_request"]["size"]) == (4, "gpu_l")
    assert d["parameters"]["max_concurrent_requests"] == 512


def test_delete_answers_204_and_then_404_and_frees_the_name(client, owner, llama):
    dep_id = deploy(client, owner, llama, "temp").json()["id"]
    assert client.delete(f"/api/v1/deployments/{dep_id}", **owner.auth).status_code == 204
    assert client.delete(f"/api/v1/deployments/{dep_id}", **owner.auth).status_code == 404
    assert deploy(client, owner, llama, "temp").status_code == 201
    usage = client.get(f"/api/v1/accounts/{owner.account.id}/usage", **owner.auth).json()
    assert usage["used_units"] == 1 and usage["limit_units"] == 4
    assert usage["unit_costs"] == {"small": 1, "medium": 2, "large": 4, "extra_large": 8}
    assert [d["serving_name"] for d in usage["deployments"]] == ["temp"]


def test_lists_are_paginated_and_scoped(client, owner, stranger, llama):
    deploy(client, owner, llama, "a1")
    listed = client.get(f"/api/v1/deployments?account={owner.account.id}", **owner.auth).json()
    assert set(listed) == {"items", "next"} and [d["serving_name"] for d in listed["items"]] == ["a1"]
    assert client.get("/api/v1/deployments", **stranger.auth).json()["items"] == []


def test_a_stranger_gets_404_for_everything_of_another_account_and_anonymous_401(client, owner, stranger, llama):
    dep_id = deploy(client, owner, llama, "mine").json()["id"]
    acc = owner.account.id
    assert deploy(client, stranger, llama, "theirs", space=stranger.space.id).status_code == 404
    own_reg = make_registration(stranger.account)
    assert deploy(client, stranger, own_reg, "x", space=owner.space.id).status_code == 404
    for url in (f"/api/v1/deployments/{dep_id}", f"/api/v1/deployments?account={acc}",
                f"/api/v1/accounts/{acc}/usage", f"/api/v1/limit-requests?account={acc}"):
        assert client.get(url, **stranger.auth).status_code == 404, url
        assert client.get(url).status_code == 401, url
    assert client.delete(f"/api/v1/deployments/{dep_id}", **stranger.auth).status_code == 404
    r = post(client, stranger, "/api/v1/limit-requests", {"account": acc, "units": 8, "reason": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert Deployment.objects.get(pk=dep_id).is_active


def test_limit_requests_are_created_and_listed_with_their_state(client, owner, staff):
    from cfm.quota import services
    from cfm.quota.models import LimitRequest

    r = post(client, owner, "/api/v1/limit-requests", {"account": owner.account.id, "units": 8, "reason": "pilot"})
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "pending"
    services.limit_request_deny(user=staff.user, request=LimitRequest.objects.get(), answer="Not this quarter.")
    items = client.get(f"/api/v1/limit-requests?account={owner.account.id}", **owner.auth).json()["items"]
    assert [(i["status"], i["answer"]) for i in items] == [("denied", "Not this quarter.")]
    low = post(client, owner, "/api/v1/limit-requests", {"account": owner.account.id, "units": 2, "reason": "x"})
    assert low.status_code == 400 and "units" in low.json()["error"]["fields"]



# --- parameters: the catalog's ranges -------------------------------------------------------------------------

INTEGER_PARAMETERS = [p for p in catalog.DEPLOYMENT_PARAMETERS if not p.choices]


def test_every_integer_parameter_has_both_bounds_in_the_catalog():
    assert INTEGER_PARAMETERS and all(p.minimum is not None and p.maximum is not None for p in INTEGER_PARAMETERS)


@pytest.mark.parametrize("bound", ["minimum", "maximum"])
def test_parameters_at_the_catalogs_bounds_are_accepted(client, owner, llama, bound):
    values = {p.name: getattr(p, bound) for p in INTEGER_PARAMETERS}
    r = deploy(client, owner, llama, f"at_{bound}", software_spec=catalog.SPEC_TGI, parameters=values)
    assert r.status_code == 201, r.content
    assert r.json()["platform_request"]["deployment"]["online"]["parameters"]["foundation_model"] == {
        "dtype": "float16", **values}


@pytest.mark.parametrize("name", [p.name for p in INTEGER_PARAMETERS])
@pytest.mark.parametrize("where", ["below", "above", "huge", "float", "string"])
def test_a_parameter_outside_the_catalogs_range_is_refused_naming_it_and_its_range(client, owner, llama, name,
                                                                                    where):
    p = next(p for p in INTEGER_PARAMETERS if p.name == name)
    value = {"below": p.minimum - 1, "above": p.maximum + 1, "huge": 99999999999999999999999,
             "float": float(p.minimum), "string": str(p.minimum)}[where]
    r = deploy(client, owner, llama, "n12", software_spec=catalog.SPEC_TGI, parameters={name: value})
    assert r.status_code == 422, r.content
    err = r.json()["error"]
    assert err["code"] == "invalid_parameters" and name in err["message"]
    assert set(err["fields"]) == {f"parameters.{name}"}
    message = err["fields"][f"parameters.{name}"]
    assert str(p.minimum) in message and str(p.maximum) in message
    assert not Deployment.objects.exists()


# --- configuration names -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("given", ["Small", "SMALL", " small ", "small"])
def test_the_configuration_is_read_case_insensitively(client, owner, llama, given):
    r = deploy(client, owner, llama, "any_case", configuration=given)
    assert r.status_code == 201, r.content
    assert r.json()["configuration"] == "small"


def test_the_same_key_with_the_configuration_in_another_case_is_the_same_request(client, owner, llama):
    first = deploy(client, owner, llama, "keyed", configuration="Large", key="k-case")
    again = deploy(client, owner, llama, "keyed", configuration="large", key="k-case")
    assert (first.status_code, again.status_code) == (201, 201) and first.json() == again.json()
    assert LedgerEntry.objects.filter(kind="reserve").count() == 1


def test_a_refused_configuration_names_the_accepted_ones_as_the_api_spells_them(client, owner):
    reg = make_registration(owner.account, mistral_report())
    r = deploy(client, owner, reg, "mistral", configuration="Medium")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "configuration_not_allowed" and err["allowed"] == ["small"]
    assert "small" in err["message"] and "Small" not in err["message"]


# --- registrations without a report ------------------------------------------------------------------------------

@pytest.mark.parametrize("status, says", [("failed", "did not finish"), ("inspecting", "has not finished yet")])
def test_a_registration_without_a_report_is_not_deployable_and_the_answer_says_why(client, owner, status, says):
    from cfm.registry.models import Registration

    reg = Registration.objects.create(account=owner.account, source_kind="hub", source="org/nothing",
                                      revision="main", status=status, error_code="repo_not_found")
    r = deploy(client, owner, reg, "no_report")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "not_deployable" and err["registration_status"] == status
    assert says in err["message"] and "no report" in err["message"] and "failed checks" not in err["message"]


def test_a_report_that_is_not_deployable_points_to_its_failed_checks(client, owner, broken):
    err = deploy(client, owner, broken, "broken").json()["error"]
    assert err["code"] == "not_deployable" and "failed checks" in err["message"]


# --- limit requests --------------------------------------------------------------------------------------------

def ask(client, actor, units=8, reason="pilot", account=None):
    return post(client, actor, "/api/v1/limit-requests",
                {"account": account or actor.account.id, "units": units, "reason": reason})


def test_the_same_pending_request_again_answers_409_with_the_existing_one(client, owner, staff):
    from cfm.quota import services
    from cfm.quota.models import LimitRequest

    first = ask(client, owner)
    again = ask(client, owner, reason="pilot, asked again")
    assert (first.status_code, again.status_code) == (201, 409)
    err = again.json()["error"]
    assert err["code"] == "limit_request_pending" and err["limit_request"] == first.json()["id"]
    assert str(first.json()["id"]) in err["message"]
    assert ask(client, owner, units=12).status_code == 201  # another total is another request
    services.limit_request_deny(user=staff.user, request=LimitRequest.objects.get(pk=first.json()["id"]),
                                answer="Not now.")
    assert ask(client, owner).status_code == 201  # answered: it may be asked again
    assert LimitRequest.objects.filter(units=8).count() == 2


@pytest.mark.parametrize("plan", ["lite", "essentials"])
def test_a_plan_without_custom_models_cannot_ask_for_a_limit(client, owner, plan):
    from cfm.quota.models import LimitRequest

    owner.account.plan = plan
    owner.account.save()
    r = ask(client, owner)
    assert r.status_code == 403 and r.json()["error"]["code"] == "plan_not_allowed"
    assert not LimitRequest.objects.exists()


@pytest.mark.parametrize("field, value, status", [
    ("units", 9_999, 201), ("units", 10_000, 201), ("units", 10_001, 400),
    ("reason", "r" * 1_999, 201), ("reason", "r" * 2_000, 201), ("reason", "r" * 2_001, 400),
    ("reason", "   ", 400),
])
def test_limit_requests_are_bounded_in_units_and_reason(client, owner, field, value, status):
    from cfm.quota.models import LIMIT_REQUEST_MAX_UNITS, LIMIT_REQUEST_REASON_MAX

    assert (LIMIT_REQUEST_MAX_UNITS, LIMIT_REQUEST_REASON_MAX) == (10_000, 2_000)
    r = ask(client, owner, **{field: value})
    assert r.status_code == status, r.content[:300]
    if status == 400:
        assert set(r.json()["error"]["fields"]) == {field}
