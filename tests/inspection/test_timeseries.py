"""Time-series models (tinytimemixer): tsfm_config.json and sizing by
concurrent users and payload (platform-rules sections 2, 4 and 6)."""
from __future__ import annotations

import json
import sys

import pytest
from inspect_support import TSFM, check, folder, real_safetensors, run, statuses
from modelfactory import write_json

from cfm.catalog import TSFM_CONFIG_TEMPLATE
from cfm.inspection.timeseries import parse_payload

TTM = {"model_type": "tinytimemixer", "architectures": ["TinyTimeMixerForPrediction"], "context_length": 512,
       "prediction_length": 96}
NEW_KEYS = {k: v for k, v in TSFM_CONFIG_TEMPLATE.items() if not k.startswith("service_handler")}
NEW_KEYS.update({"inference_handler_module_path": "tsfminference.tsfm_inference_handler",
                 "inference_handler_class_name": "TinyTimeMixerForecastingInferenceHandler"})


def _ttm(tmp_path, tsfm=TSFM_CONFIG_TEMPLATE, raw: bytes | None = None):
    path = folder(tmp_path / "ttm", TTM, tokenizer=False)
    real_safetensors(path / "model.safetensors", {"backbone.w": ("F32", [64, 8])})
    if raw is not None:
        (path / "tsfm_config.json").write_bytes(raw)
    elif tsfm is not None:
        write_json(path / "tsfm_config.json", tsfm)
    return path


def test_published_ttm_passes_as_time_series(tmp_path):
    d = run(_ttm(tmp_path))
    st = statuses(d)
    assert d["family"] == "time_series" and d["certified"] is True and d["deployable"] is True
    assert (st["tokenizer"], st["tsfm_config"], st["size"]) == ("skip", "pass", "pass")
    assert d["software_specs"] == [TSFM] and d["recommended_software_spec"] == TSFM
    assert d["tensor_parallel"] is None and d["parameters"] == 512


def test_new_granite_tsfm_keys_are_accepted(tmp_path):
    c = check(run(_ttm(tmp_path, NEW_KEYS)), "tsfm_config")
    assert c["status"] == "pass" and "TinyTimeMixerForecastingInferenceHandler" in c["message"]


def test_tuning_handler_beside_the_inference_one_is_accepted(tmp_path):
    doc = dict(NEW_KEYS, tuning_handler_module_path="tsfmfinetuning.tsfm_tuning_handler",
               tuning_handler_class_name="TinyTimeMixerForecastingTuningHandler")
    assert check(run(_ttm(tmp_path, doc)), "tsfm_config")["status"] == "pass"


def test_missing_tsfm_config_fails_and_plans_adding_it(tmp_path):
    d = run(_ttm(tmp_path, None))
    c = check(d, "tsfm_config")
    assert c["status"] == "fail" and "add_tsfm_config" in c["remedy"]
    assert d["preparation"] == ["add_tsfm_config"] and d["deployable"] is False


@pytest.mark.parametrize("raw, words", [
    (b"{not json", "not valid JSON"), (b"[]", "array"), (b'"x"', "string"), (b"{}", "names no handler"),
    (b'{"model_type": "tinytimemixer"}', "names no handler"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_invalid_tsfm_config_fails(tmp_path, raw, words):
    c = check(run(_ttm(tmp_path, raw=raw)), "tsfm_config")
    assert c["status"] == "fail" and words in c["message"], c["message"]


HOSTILE = [
    {"service_handler_module_path": "os", "service_handler_class_name": "system"},
    {"service_handler_module_path": "tsfminference.tsfm_service_handler", "service_handler_class_name": "Evil"},
    {"service_handler_module_path": "__import__('os').system('touch /tmp/x')",
     "service_handler_class_name": "TinyTimeMixerForecastingHandler"},
    {"inference_handler_module_path": "tsfminference.tsfm_inference_handler",
     "inference_handler_class_name": "TinyTimeMixerForecastingHandler"},  # old class with new module
    {"service_handler_module_path": ["tsfminference.tsfm_service_handler"],
     "service_handler_class_name": {"x": 1}},
    {"service_handler_module_path": 7, "service_handler_class_name": None},
    {"service_handler_module_path": "tsfminference.tsfm_service_handler"},  # class missing
    {"service_handler_module_path": "tsfminference.tsfm_service_handler" + "x" * 100_000,
     "service_handler_class_name": "TinyTimeMixerForecastingHandler"},
    dict(TSFM_CONFIG_TEMPLATE, tuning_handler_module_path="evil", tuning_handler_class_name="Evil"),
    dict(TSFM_CONFIG_TEMPLATE, module_path="evil_module"),
    dict(TSFM_CONFIG_TEMPLATE, model_class_name=["TinyTimeMixerForPrediction"]),
    dict(TSFM_CONFIG_TEMPLATE, model_config_name={"a": "b"}),
]


@pytest.mark.parametrize("doc", HOSTILE, ids=range(len(HOSTILE)))
def test_handler_names_outside_the_allow_list_fail(tmp_path, doc):
    d = run(_ttm(tmp_path, doc))
    c = check(d, "tsfm_config")
    assert c["status"] == "fail" and len(c["message"]) < 1000 and d["deployable"] is False


def test_handler_modules_are_never_imported(tmp_path, monkeypatch):
    """A module on sys.path named by tsfm_config.json would write a marker if imported."""
    marker = tmp_path / "imported"
    (tmp_path / "evil_handler_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for doc in ({"service_handler_module_path": "evil_handler_mod", "service_handler_class_name": "X"},
                dict(TSFM_CONFIG_TEMPLATE, module_path="evil_handler_mod")):
        assert check(run(_ttm(tmp_path / json.dumps(doc)[:20].replace("/", "_"), doc)), "tsfm_config")["status"] \
            == "fail"
    assert not marker.exists() and "evil_handler_mod" not in sys.modules


def test_general_models_skip_tsfm_config(tmp_path):
    from inspect_support import llama_cfg
    path = folder(tmp_path / "m", llama_cfg())
    real_safetensors(path / "model.safetensors")
    write_json(path / "tsfm_config.json", {"service_handler_module_path": "os"})
    assert check(run(path), "tsfm_config")["status"] == "skip"


# -- sizing ---------------------------------------------------------------------------------------------------
def test_without_figures_small_is_recommended_and_the_assumption_said(tmp_path):
    d = run(_ttm(tmp_path))
    c = check(d, "size")
    assert d["configuration"] == "small" and c["status"] == "pass"
    assert "assum" in c["message"]


@pytest.mark.parametrize("users, payload, conf", [
    (6, "1000", "small"), (7, "1000", "medium"), (12, "1000", "medium"), (13, "1000", "large"),
    (50, "1000", "extra_large"),
    (14, "30", "small"), (15, "30", "medium"), (113, "30", "extra_large"),
    (14, "31", "medium"),  # 31 is past the 30 row: the 60 row (Small: 14 users)... still 14 -> small? see below
    (13, "61", "small"), (14, "61", "medium"),  # the 125 row: Small serves 13
    (10, "251", "small"), (11, "251", "medium"),  # the 500 row
    (6, "501", "small"), (7, "501", "medium"),  # the 1000 row
    (14, "15x5", "small"), (15, "15x6", "medium"), (14, "15x6", "small"),  # 90 > 75: the 15x10 row
    (6, "23x100", "small"), (7, "23x100", "medium"), (10, "15x80", "small"), (10, "20x60", "small"),
    (11, "20x60", "medium"),  # 1200 = 15x80
    (1, "1", "small"), (28, "60", "medium"), (29, "60", "large"), (56, "60", "large"), (57, "60", "extra_large"),
])
def test_users_and_payload_pick_row_then_configuration(tmp_path, users, payload, conf):
    if (users, payload) == (14, "31"):
        conf = "small"  # the 60 row: Small serves 14
    d = run(_ttm(tmp_path), users=users, payload=payload)
    c = check(d, "size")
    assert (d["configuration"], c["status"]) == (conf, "pass"), c["message"]


@pytest.mark.parametrize("users, payload, conf, words", [
    (51, "1000", "extra_large", "more than Extra large"),
    (1000, "30", "extra_large", "more than Extra large"),
    (1, "1001", "small", "beyond"),
    (7, "5000", "medium", "beyond"),
    (1, "24x100", "small", "beyond"),
    (51, "100000", "extra_large", "Extra large"),
])
def test_beyond_the_table_warns(tmp_path, users, payload, conf, words):
    d = run(_ttm(tmp_path), users=users, payload=payload)
    c = check(d, "size")
    assert (c["status"], d["configuration"]) == ("warn", conf), c["message"]
    assert words in c["message"] and d["deployable"] is True


def test_users_without_payload_size_on_the_heaviest_row(tmp_path):
    d = run(_ttm(tmp_path), users=7)
    assert d["configuration"] == "medium" and "assumed" in check(d, "size")["message"]


def test_payload_without_users_assumes_one(tmp_path):
    assert run(_ttm(tmp_path), payload="1000")["configuration"] == "small"


@pytest.mark.parametrize("text, parsed", [("512", (512, None, None)), (" 15x40 ", (None, 15, 40)),
                                          ("15X40", (None, 15, 40)), ("15×40", (None, 15, 40)),
                                          ("15*40", (None, 15, 40))])
def test_payload_forms(text, parsed):
    p = parse_payload(text)
    assert (p.length, p.series, p.targets) == parsed


@pytest.mark.parametrize("text", ["0", "-5", "abc", "15x0", "0x5", "1e3", "15x", "x40", "15x40x2", "5.5", "²",
                                  "15 40"])
def test_bad_payloads_are_refused(text):
    with pytest.raises(ValueError):
        parse_payload(text)


def test_figures_are_ignored_for_general_models(tmp_path):
    from inspect_support import llama_cfg
    path = folder(tmp_path / "m", llama_cfg())
    real_safetensors(path / "model.safetensors")
    d = run(path, users=500, payload="30")
    assert d["configuration"] == "small" and check(d, "size")["status"] == "pass"


def test_a_wrong_model_name_is_named_in_the_message(tmp_path):
    c = check(run(_ttm(tmp_path, dict(TSFM_CONFIG_TEMPLATE, module_path="evil_module"))), "tsfm_config")
    assert c["status"] == "fail" and 'module_path = "evil_module"' in c["message"] and "tsfm_public" in c["message"]


@pytest.mark.parametrize("key, value", [("maximum_context_length", 1024), ("maximum_prediction_length", 720),
                                        ("minimum_context_length", 2048)])
def test_tsfm_config_lengths_that_disagree_with_config_json_warn(tmp_path, key, value):
    d = run(_ttm(tmp_path, {**TSFM_CONFIG_TEMPLATE, key: value}))
    c = check(d, "tsfm_config")
    assert c["status"] == "warn" and key in c["message"] and str(value) in c["message"]
    assert "add_tsfm_config" in c["remedy"] and d["deployable"] is True


def test_tsfm_config_naming_another_model_type_fails(tmp_path):
    c = check(run(_ttm(tmp_path, {**TSFM_CONFIG_TEMPLATE, "model_type": "patchtst"})), "tsfm_config")
    assert c["status"] == "fail" and "patchtst" in c["message"]


def test_a_payload_without_users_reads_as_a_sentence(tmp_path, run_inspect):
    proc, d = run_inspect(_ttm(tmp_path), "--json", "--payload", "500")
    assert "expected users: 1" in check(d, "size")["message"]


@pytest.mark.parametrize("module_path", ["tsfm_public", "tsfm_public.models.tinytimemixer.modeling_tinytimemixer",
                                         "tsfm_public.toolkit"])
def test_module_path_inside_tsfm_public_passes(tmp_path, module_path):
    """granite-tsfm's own TSFMConfig writes the module's dotted path (decision in the platform rules)."""
    c = check(run(_ttm(tmp_path, dict(TSFM_CONFIG_TEMPLATE, module_path=module_path))), "tsfm_config")
    assert c["status"] == "pass", c["message"]


@pytest.mark.parametrize("module_path", ["tsfm_public.", "tsfm_public..models", "tsfm_publicx.models",
                                         "evil.tsfm_public", "tsfm_public.models;import os", "tsfm_public.m-x",
                                         "tsfm_public.mоdels", ".tsfm_public"])
def test_module_path_that_only_looks_like_tsfm_public_fails(tmp_path, module_path):
    c = check(run(_ttm(tmp_path, dict(TSFM_CONFIG_TEMPLATE, module_path=module_path))), "tsfm_config")
    assert c["status"] == "fail" and "tsfm_public" in c["message"]
