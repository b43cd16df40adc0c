"""The decision on deployment parameters against memory and context
(platform-rules.md): refused past the context length or past one sequence of
KV cache (with the next configuration up), warned when the batch does not fit
at once, defaults within a short context; every field checked in one round,
in the API and in the deploy form. Bounds are tested below, at and above."""
from __future__ import annotations

import json
import re

import pytest
from quotafactory import llama_report, make_registration, mistral_report

from cfm import catalog
from cfm.quota.models import Deployment

SMALL_TOKENS, MEDIUM_TOKENS, LARGE_TOKENS = 4096, 100_000, 300_000


def with_memory(report: dict, *, context: int | None = 8192, small=SMALL_TOKENS, medium=MEDIUM_TOKENS,
                large=LARGE_TOKENS) -> dict:
    confs = {"small": (1, small), "medium": (2, medium), "large": (4, large)}
    return {**report, "context_length": context, "memory": {"kv_cache_bytes_per_token": 131072, "configurations": {
        name: {"gpus": g, "gpu_memory_bytes": g * 80_000_000_000, "fits": True, "free_bytes": t * 131072,
               "kv_cache_tokens": t} for name, (g, t) in confs.items()
        if name in catalog.allowed_configurations(report["model_type"], "general")}}}


def deploy(client, actor, reg, name="dep", **body):
    payload = {"registration": reg.id, "space": actor.space.id, "serving_name": name, **body}
    return client.post("/api/v1/deployments", data=json.dumps(payload), content_type="application/json",
                       **actor.auth)


@pytest.fixture
def model(owner):
    return make_registration(owner.account, with_memory(llama_report()))


# --- max_sequence_length against the context length ------------------------------------------------------
@pytest.mark.parametrize("value, accepted", [(8191, True), (8192, True), (8193, False)])
def test_max_sequence_length_against_the_context_length(client, owner, model, value, accepted):
    r = deploy(client, owner, model, configuration="medium", parameters={"max_sequence_length": value})
    if accepted:
        assert r.status_code == 201, r.content
        assert r.json()["parameters"]["max_sequence_length"] == value
        return
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_parameters" and err["context_length"] == 8192
    assert set(err["fields"]) == {"parameters.max_sequence_length"}
    assert "8192" in err["fields"]["parameters.max_sequence_length"]
    assert not Deployment.objects.exists()


# --- max_sequence_length against the configuration's KV cache -----------------------------------------------
@pytest.mark.parametrize("value, accepted", [(SMALL_TOKENS - 1, True), (SMALL_TOKENS, True),
                                             (SMALL_TOKENS + 1, False)])
def test_max_sequence_length_against_the_kv_cache(client, owner, model, value, accepted):
    r = deploy(client, owner, model, configuration="small", parameters={"max_sequence_length": value,
                                                                        "max_batch_size": 1})
    if accepted:
        assert r.status_code == 201, r.content
        assert r.json()["warnings"] == []
        return
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_parameters"
    assert err["kv_cache_tokens"] == SMALL_TOKENS and err["next_configuration"] == "medium"
    message = err["fields"]["parameters.max_sequence_length"]
    assert str(SMALL_TOKENS) in message and "Medium" in message and str(MEDIUM_TOKENS) in message


def test_the_same_length_is_accepted_on_the_next_configuration_up(client, owner, model):
    r = deploy(client, owner, model, configuration="medium", parameters={"max_sequence_length": SMALL_TOKENS + 1})
    assert r.status_code == 201, r.content


def test_without_a_larger_configuration_the_refusal_says_so(client, owner):
    reg = make_registration(owner.account, with_memory(mistral_report()))
    r = deploy(client, owner, reg, parameters={"max_sequence_length": SMALL_TOKENS + 1})
    assert r.status_code == 422
    err = r.json()["error"]
    assert "next_configuration" not in err
    assert "no larger configuration" in err["fields"]["parameters.max_sequence_length"]


# --- max_batch_size x max_sequence_length against the KV cache --------------------------------------------------
@pytest.mark.parametrize("batch, warned", [(3, False), (4, False), (5, True)])
def test_a_batch_beyond_the_kv_cache_is_accepted_with_a_warning(client, owner, model, batch, warned):
    r = deploy(client, owner, model, configuration="small", parameters={"max_sequence_length": 1024,
                                                                        "max_new_tokens": 512,
                                                                        "max_batch_size": batch})
    assert r.status_code == 201, r.content
    warnings = [w for w in r.json()["warnings"] if w["code"] == "batch_exceeds_kv_cache"]
    if not warned:
        assert warnings == []
        return
    (w,) = warnings
    assert w["sequences"] == SMALL_TOKENS // 1024 == 4
    assert "4 sequences of 1024 tokens" in w["message"]


def test_the_default_batch_on_a_small_kv_cache_is_warned(client, owner, model):
    r = deploy(client, owner, model)
    assert r.status_code == 201, r.content
    d = r.json()
    assert d["parameters"]["max_batch_size"] == 256 and d["parameters"]["max_sequence_length"] == 2048
    assert [w["sequences"] for w in d["warnings"] if w["code"] == "batch_exceeds_kv_cache"] == [2]


# --- defaults ---------------------------------------------------------------------------------------------------------
# (not named `context`: that is pytest-playwright's browser-context fixture, and a parameter of that name
# would move these tests among the browser tests)
@pytest.mark.parametrize("context_length, sequence, new", [
    (1024, 1024, 1024), (2047, 2047, 2047), (2048, 2048, 2048), (2049, 2048, 2048), (131072, 2048, 2048),
    (None, 2048, 2048)])
def test_defaults_follow_a_short_context(client, owner, context_length, sequence, new):
    reg = make_registration(owner.account, with_memory(llama_report(), context=context_length, small=10**6))
    r = deploy(client, owner, reg)
    assert r.status_code == 201, r.content
    params = r.json()["parameters"]
    assert (params["max_sequence_length"], params["max_new_tokens"]) == (sequence, new)
    assert params["dtype"] == "float16"  # the platform's default: the rules give no other


def test_a_shorter_sequence_given_alone_takes_new_tokens_within_it(client, owner, model):
    r = deploy(client, owner, model, parameters={"max_sequence_length": 512})
    assert r.status_code == 201, r.content
    assert r.json()["parameters"]["max_new_tokens"] == 512


def test_a_report_without_memory_keeps_the_old_bounds(client, owner, llama):
    r = deploy(client, owner, llama, parameters={"max_sequence_length": 100_000, "max_new_tokens": 20})
    assert r.status_code == 201, r.content


# --- one round -------------------------------------------------------------------------------------------------------
def test_the_api_names_every_field_at_fault_at_once(client, owner, model):
    r = deploy(client, owner, model, name="Bad-Name!", configuration="small", software_spec="nope",
               parameters={"max_sequence_length": 9000, "max_batch_size": 0, "dtype": "int8"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid"  # the first refusal in the contract's order decides the code
    assert set(err["fields"]) == {"serving_name", "software_spec", "parameters.max_sequence_length",
                                  "parameters.max_batch_size", "parameters.dtype"}


def test_a_taken_name_and_a_bad_parameter_come_together(client, owner, model):
    assert deploy(client, owner, model, name="taken", configuration="medium").status_code == 201
    r = deploy(client, owner, model, name="taken", configuration="medium", parameters={"max_sequence_length": 9000})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_parameters"
    assert set(err["fields"]) == {"serving_name", "parameters.max_sequence_length"}


def _form_key(client, reg):
    page = client.get(f"/quota/registrations/{reg.id}/deploy/")
    return page, re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page.content.decode()).group(1)


def test_the_form_reports_the_serving_name_and_the_parameters_in_one_round(client, owner, model):
    client.force_login(owner.user)
    _page, key = _form_key(client, model)
    r = client.post(f"/quota/registrations/{model.id}/deploy/", {
        "space": owner.space.id, "configuration": "small", "software_spec": catalog.SPEC_VLLM,
        "serving_name": "x" * 40, "idempotency_key": key, "param_max_sequence_length": "9000",
        "param_max_batch_size": "0"})
    html = r.content.decode()
    assert r.status_code in (200, 422)
    assert "at most 36" in html  # the form's own length check on the serving name
    assert "the model&#x27;s context length" in html or "the model's context length" in html
    assert "from 1 to" in html  # max_batch_size's range
    assert not Deployment.objects.exists()


def test_the_form_proposes_this_models_defaults(client, owner, model):
    client.force_login(owner.user)
    short = make_registration(owner.account, with_memory(llama_report(), context=1024), source="org/short")
    html = client.get(f"/quota/registrations/{short.id}/deploy/").content.decode()
    field = re.search(r'<input[^>]*name="param_max_sequence_length"[^>]*>', html).group(0)
    assert 'placeholder="1024"' in field and 'max="1024"' in field
    # A BF16 model is proposed bfloat16 (llama_report's dtypes are BF16).
    select = re.search(r'<select[^>]*name="param_dtype".*?</select>', html, re.S).group(0)
    assert re.search(r'<option value="bfloat16"[^>]*selected', select)
