"""The report page people can trust: one verdict badge everywhere with the
primary button following it, the hardware and memory per configuration at a
chosen sequence length, a quantized model described by its real bits, the
"if quantized" estimate, and time-series sizing from the page's own form.

The reports here carry the contract's new fields (`verdict`,
`context_length`, `memory`), computed in the test from the contract's
formula, not by cfm."""
from __future__ import annotations

import re

import pytest
from actors import member
from django.urls import reverse
from django.utils import translation
from quotafactory import llama_report, timeseries_report

from cfm import catalog
from cfm.registry import presenters
from cfm.registry.models import Registration, SourceKind, Status

pytestmark = pytest.mark.django_db

GPU, SHARE, ALLOWANCE = 80_000_000_000, 72_000_000_000, 2 * 1024**3


def _memory(serving: int, per_token: int | None, confs=("small", "medium", "large")) -> dict:
    out = {}
    for key, gpus in (("small", 1), ("medium", 2), ("large", 4)):
        if key not in confs:
            continue
        free = gpus * SHARE - serving - gpus * ALLOWANCE
        out[key] = {"gpus": gpus, "gpu_memory_bytes": gpus * GPU, "fits": free > 0, "free_bytes": free,
                    "kv_cache_tokens": (free // per_token if free > 0 else 0) if per_token else None}
    return {"kv_cache_bytes_per_token": per_token, "configurations": out}


def llama8b(**extra) -> dict:
    r = llama_report()
    # llama 3 8B: 32 layers, 8 key/value heads of 128: 2 x 32 x 8 x 128 x 2 bytes a token
    r.update(verdict="ready", context_length=8192, memory=_memory(r["serving_bytes"], 131072))
    r.update(extra)
    return r


def mixtral_gptq() -> dict:
    r = llama_report()
    serving = 24_700_000_000
    r.update(model_type="mixtral", architectures=["MixtralForCausalLM"], tensor_parallel=False,
             parameters=46_700_000_000, weight_bytes=serving, serving_bytes=serving, quantization="gptq",
             dtypes={"I32": 700, "F16": 300}, verdict="ready", context_length=32768,
             memory=_memory(serving, 131072, confs=("small",)))
    return r


@pytest.fixture
def owner(client):
    user, account = member("noa")
    client.force_login(user)
    return user, account


def _reg(owner, report, status=Status.DONE) -> Registration:
    user, account = owner
    return Registration.objects.create(account=account, created_by=user, source_kind=SourceKind.HUB,
                                       source="org/model", status=status, report=report)


def _page(client, reg, **params) -> str:
    return client.get(reverse("registration", args=[reg.pk]), params).content.decode()


# --- one verdict, one badge ---------------------------------------------------------------------------


@pytest.mark.parametrize(("report_update", "verdict"), [
    ({}, "ready"),
    ({"preparation": ["convert_weights_to_safetensors"]}, "prepare"),
    ({"certified": False}, "uncertified"),
    ({"certified": False, "preparation": ["generate_tokenizer_json"]}, "uncertified"),
    ({"deployable": False, "certified": False, "preparation": ["generate_tokenizer_json"]}, "refused"),
])
def test_a_report_stored_before_the_verdict_gets_the_contracts_precedence(report_update, verdict):
    report = llama_report()
    report.update(report_update)
    assert "verdict" not in report and presenters.verdict_of(report) == verdict
    # the engine's word wins when the report has one
    assert presenters.verdict_of({**report, "verdict": "prepare"}) == "prepare"


@pytest.mark.parametrize(("verdict", "label", "primary"), [
    ("ready", "Deployable", "deploy"),
    ("prepare", "Prepare first", "prepare"),
    ("uncertified", "Uncertified", "deploy"),
    ("refused", "Not deployable", "prepare"),
])
def test_the_badge_and_the_primary_button_follow_the_verdict(client, owner, verdict, label, primary):
    report = llama8b(verdict=verdict, preparation=["convert_weights_to_safetensors"] if verdict != "ready" else [],
                     deployable=verdict != "refused")
    reg = _reg(owner, report)
    html = _page(client, reg)
    badges = set(re.findall(r'class="badge verdict-badge verdict-(\w+)" data-verdict="\w+"[^>]*>([^<]+)<', html))
    assert badges == {(verdict, label)}  # the header and the report say the same, in the same colour
    assert f'data-primary="{primary}"' in html
    primary_buttons = re.findall(r'class="btn btn-primary" id="cta-(\w+)"', html)
    assert primary_buttons == [primary]
    if verdict == "refused":
        assert 'id="cta-deploy"' not in html
    if verdict in ("uncertified", "prepare"):
        assert 'id="cta-caveat"' in html


def test_the_dashboard_list_shows_the_same_badge_as_the_report(client, owner):
    regs = {v: _reg(owner, llama8b(verdict=v, deployable=v != "refused")) for v in catalog.VERDICTS}
    html = client.get(reverse("dashboard")).content.decode()
    for verdict, reg in regs.items():
        row = re.search(rf'<tr data-id="{reg.pk}".*?</tr>', html, re.S).group(0)
        assert f'data-verdict="{verdict}"' in row, verdict
    # a row stored before the verdict: deployable decides
    old = _reg(owner, {"deployable": True, "configuration": "small", "checks": []})
    html = client.get(reverse("dashboard_registrations")).content.decode()
    row = re.search(rf'<tr data-id="{old.pk}".*?</tr>', html, re.S).group(0)
    assert 'data-verdict="ready"' in row and "Deployable" in row


def test_the_badge_reads_in_japanese(client, owner):
    reg = _reg(owner, llama8b(verdict="prepare", preparation=["convert_weights_to_safetensors"]))
    with translation.override("ja"):
        html = client.get(reverse("registration", args=[reg.pk]), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "Prepare first" not in html and 'data-verdict="prepare"' in html


# --- memory -------------------------------------------------------------------------------------------


def test_each_configuration_shows_its_gpus_and_what_fits_at_the_default_length(client, owner):
    report = llama8b()
    reg = _reg(owner, report)
    rows = presenters.memory_rows(report, presenters.default_sequence_length(report))
    assert [(r["key"], r["gpus"], r["gpu_memory_bytes"]) for r in rows] == [
        ("small", 1, GPU), ("medium", 2, 2 * GPU), ("large", 4, 4 * GPU)]
    small = rows[0]
    free = SHARE - report["serving_bytes"] - ALLOWANCE
    assert small["kv_cache_tokens"] == free // 131072 == 410400
    assert small["sequences"] == 410400 // 2048  # min(2048, context 8192)
    kinds = {s["kind"]: s["bytes"] for s in small["segments"]}
    assert kinds == {"weights": report["serving_bytes"], "allowance": ALLOWANCE, "kv": free, "reserve": GPU - SHARE}
    assert sum(s["width"] for s in small["segments"]) == pytest.approx(100, abs=0.05)
    html = _page(client, reg)
    assert "Hardware derived from the planning guide" in html
    assert "1 GPU × 80 GB" in html and "2 GPUs × 80 GB" in html and "4 GPUs × 80 GB" in html
    assert "410,400 tokens of KV cache fit." in html and "200 sequences of 2,048 tokens at once." in html


def test_a_chosen_sequence_length_changes_how_many_sequences_fit(client, owner):
    reg = _reg(owner, llama8b())
    html = _page(client, reg, sequence_length="8192")
    assert "50 sequences of 8,192 tokens at once." in html  # 410400 // 8192
    html = _page(client, reg, sequence_length="9000")  # past the context length: refused, default shown
    assert 'aria-invalid="true"' in html and "from 1 to 8,192" in html
    assert "200 sequences of 2,048 tokens at once." in html
    html = _page(client, reg, sequence_length="lots")
    assert 'id="sequence-error"' in html


def test_a_model_that_does_not_fit_says_so_and_a_short_context_bounds_the_default(client, owner):
    serving = 70_000_000_000  # fits no 1-GPU configuration's memory
    report = llama8b(serving_bytes=serving, weight_bytes=serving, context_length=1024,
                     memory=_memory(serving, 131072))
    rows = presenters.memory_rows(report, presenters.default_sequence_length(report))
    assert presenters.default_sequence_length(report) == 1024
    assert rows[0]["fits"] is False and rows[0]["over"] and rows[1]["fits"] is True
    html = _page(client, _reg(owner, report))
    assert "The weights do not leave room for a KV cache in 80 GB." in html


def test_unknown_kv_cache_still_shows_the_hardware(client, owner):
    report = llama8b(memory=None)
    html = _page(client, _reg(owner, report))
    assert "1 GPU × 80 GB" in html and "KV cache per token unknown" in html


def test_a_model_without_tensor_parallelism_shows_small_only():
    rows = presenters.memory_rows(mixtral_gptq(), 2048)
    assert [r["key"] for r in rows] == ["small"]


def test_time_series_models_have_no_memory_bars():
    assert presenters.memory_rows(timeseries_report(), 2048) == []


# --- words about the weights ------------------------------------------------------------------------


def test_a_quantized_model_is_described_by_its_real_bits(client, owner):
    html = _page(client, _reg(owner, mixtral_gptq()))
    summary = re.search(r'id="weights-summary">([^<]+)<', html).group(1)
    assert summary == "46.7B parameters stored in 4.2 bits a parameter on average (GPTQ), 24.7 GB on the GPUs."
    assert "16-bit" not in summary and "Served (16-bit)" not in html
    assert "quantized" not in html.split('id="quantized"')[0][-200:]  # no "if quantized" for a quantized model
    assert presenters.quantized_estimates(mixtral_gptq()) == []


def test_an_unquantized_model_is_described_in_16_bits():
    assert presenters.weights_summary(llama8b()) == \
        "8.03B parameters served in 16 bits a parameter, 16.1 GB on the GPUs."


def test_if_quantized_says_which_smaller_configuration_would_hold_it(client, owner):
    params = 70_000_000_000
    report = llama8b(parameters=params, serving_bytes=2 * params, weight_bytes=2 * params, configuration="large",
                     memory=_memory(2 * params, 327680))
    rows = presenters.quantized_estimates(report)
    assert [(r["bits"], r["bytes"], r["configuration"], r["smaller"]) for r in rows] == [
        (8, params, "medium", True), (4, params // 2, "small", True)]
    html = _page(client, _reg(owner, report))
    assert "If quantized (an estimate)" in html and "In 4 bits: about 35 GB of weights, which fits Small." in html


# --- time series -------------------------------------------------------------------------------------


def test_time_series_sizing_follows_the_users_and_payload_typed_on_the_page(client, owner):
    reg = _reg(owner, timeseries_report())
    html = _page(client, reg)
    assert 'id="ts-users"' in html and 'id="ts-result"' not in html
    html = _page(client, reg, users="20", payload="512")
    # the guide's row for 512 is the 1000 row: Small 6, Medium 12, Large 25
    assert 'id="ts-result" data-configuration="large"' in html
    assert "Large serves 25 concurrent users" in html
    html = _page(client, reg, users="200", payload="15x5")
    assert 'data-configuration="extra_large"' in html and "Spread the load" in html
    html = _page(client, reg, users="none", payload="big")
    assert html.count('aria-invalid="true"') == 2 and 'id="ts-result"' not in html


def test_the_api_gives_the_same_verdict_in_the_list_and_the_registration(client):
    from quotafactory import make_actor

    actor = make_actor("vera")
    regs = {}
    for verdict in catalog.VERDICTS:
        regs[verdict] = Registration.objects.create(
            account=actor.account, created_by=actor.user, source_kind=SourceKind.HUB, source=f"org/{verdict}",
            status=Status.DONE, report=llama8b(verdict=verdict, deployable=verdict != "refused"))
    old = Registration.objects.create(account=actor.account, created_by=actor.user, source_kind=SourceKind.HUB,
                                      source="org/old", status=Status.DONE, report={"deployable": False})
    running = Registration.objects.create(account=actor.account, created_by=actor.user,
                                          source_kind=SourceKind.HUB, source="org/running", status=Status.QUEUED)
    items = client.get("/api/v1/registrations", **actor.auth).json()["items"]
    by_id = {i["id"]: i["verdict"] for i in items}
    assert by_id == {**{r.pk: v for v, r in regs.items()}, old.pk: "refused", running.pk: None}
    for verdict, reg in regs.items():
        assert client.get(f"/api/v1/registrations/{reg.pk}", **actor.auth).json()["verdict"] == verdict
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["RegistrationOut"]
    assert "verdict" in schema["required"] or "verdict" in schema["properties"]


def test_the_deploy_page_shows_the_same_badge(client, owner):
    reg = _reg(owner, llama8b(verdict="uncertified", certified=False))
    html = client.get(reverse("quota:deploy", args=[reg.pk])).content.decode()
    assert re.findall(r'data-verdict="(\w+)"', html) == ["uncertified"]


def test_time_series_sizing_reads_in_japanese(client, owner):
    reg = _reg(owner, timeseries_report())
    html = client.get(reverse("registration", args=[reg.pk]), {"users": "20", "payload": "15x40"},
                      HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    result = re.search(r'id="ts-result"[^>]*>(.*?)</p>', html, re.S).group(1)
    assert "15 系列 × 40 ターゲット" in result and "targets" not in result and "series" not in result
    html = client.get(reverse("registration", args=[reg.pk]), {"users": "3"},
                      HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    result = re.search(r'id="ts-result"[^>]*>(.*?)</p>', html, re.S).group(1)
    assert "長さ 1000 の単変量系列 (表で最も重いものを仮定)" in result and "assumed" not in result


def test_the_deploy_page_says_what_each_configuration_holds_at_the_default_length(client, owner):
    reg = _reg(owner, llama8b())
    html = client.get(reverse("quota:deploy", args=[reg.pk])).content.decode()
    block = re.search(r'id="deploy-memory">(.*?)</ul>', html, re.S).group(1)
    assert "200 sequences of 2,048 tokens at once." in block and "8,192 tokens" in html
    assert block.count("<li") == 3
