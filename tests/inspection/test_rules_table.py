"""Every row of the rules' architecture table (platform-rules section 3), as
the report shows it: certified, specs, recommended spec, tensor parallelism,
and which configurations a model of that architecture can get."""
from __future__ import annotations

import pytest
from inspect_support import TGI, TSFM, VLLM, check, folder, real_safetensors, run, statuses
from modelfactory import write_json

from cfm.catalog import ARCHITECTURES, TSFM_CONFIG_TEMPLATE

# The table of platform-rules.md, copied by hand (model_type: tensor
# parallel, configurations, specs, an architectures[0] as transformers writes it).
S, M, L, XL = "small", "medium", "large", "extra_large"
TABLE = {
    "bloom": (True, (S, M, L), (TGI, VLLM), "BloomForCausalLM"),
    "codegen": (False, (S,), (TGI,), "CodeGenForCausalLM"),
    "exaone": (False, (S,), (VLLM,), "ExaoneForCausalLM"),
    "falcon": (True, (S, M, L), (TGI, VLLM), "FalconForCausalLM"),
    "gemma": (True, (S, M, L), (VLLM,), "GemmaForCausalLM"),
    "gemma2": (True, (S, M, L), (VLLM,), "Gemma2ForCausalLM"),
    "gpt_bigcode": (True, (S, M, L), (TGI, VLLM), "GPTBigCodeForCausalLM"),
    "gpt_neox": (True, (S, M, L), (TGI, VLLM), "GPTNeoXForCausalLM"),
    "gptj": (False, (S,), (TGI, VLLM), "GPTJForCausalLM"),
    "gpt2": (False, (S,), (TGI, VLLM), "GPT2LMHeadModel"),
    "granite": (False, (S,), (VLLM,), "GraniteForCausalLM"),
    "jais": (True, (S, M, L), (VLLM,), "JAISLMHeadModel"),
    "llama": (True, (S, M, L), (TGI, VLLM), "LlamaForCausalLM"),
    "mistral": (False, (S,), (TGI, VLLM), "MistralForCausalLM"),
    "mixtral": (False, (S,), (VLLM,), "MixtralForCausalLM"),
    "mpt": (False, (S,), (TGI, VLLM), "MPTForCausalLM"),
    "mt5": (False, (S,), (TGI,), "MT5ForConditionalGeneration"),
    "nemotron": (True, (S, M, L), (VLLM,), "NemotronForCausalLM"),
    "olmo": (True, (S, M, L), (VLLM,), "OlmoForCausalLM"),
    "persimmon": (True, (S, M, L), (VLLM,), "PersimmonForCausalLM"),
    "phi": (True, (S, M, L), (VLLM,), "PhiForCausalLM"),
    "phi3": (True, (S, M, L), (VLLM,), "Phi3ForCausalLM"),
    "qwen": (True, (S, M, L), (VLLM,), "QWenLMHeadModel"),
    "qwen2": (True, (S, M, L), (VLLM,), "Qwen2ForCausalLM"),
    "t5": (True, (S, M, L), (TGI,), "T5ForConditionalGeneration"),
    "tinytimemixer": (None, (S, M, L, XL), (TSFM,), "TinyTimeMixerForPrediction"),
}
GENERAL = sorted(k for k in TABLE if k != "tinytimemixer")


def test_the_catalog_holds_exactly_the_rules_table():
    assert {a.model_type for a in ARCHITECTURES} == set(TABLE)
    for a in ARCHITECTURES:
        tp, confs, specs, _ = TABLE[a.model_type]
        assert (a.tensor_parallel, a.configurations, set(a.software_specs)) == (tp, confs, set(specs)), a.model_type


def _model(tmp_path, model_type, params: int | None = None, dtype="BF16"):
    """A folder of that architecture: real small safetensors, or (params) one
    sparse tensor holding that many values."""
    arch = TABLE[model_type][3]
    path = tmp_path / model_type
    cfg = {"model_type": model_type, "architectures": [arch], "torch_dtype": "bfloat16"}
    if params is None:
        folder(path, cfg)
        real_safetensors(path / "model.safetensors")
    else:
        folder(path, cfg, {"transformer.weight": (dtype, [params])})
    if model_type == "tinytimemixer":
        (path / "tokenizer.json").unlink()
        write_json(path / "tsfm_config.json", TSFM_CONFIG_TEMPLATE)
    return path


@pytest.mark.parametrize("model_type", sorted(TABLE))
def test_each_certified_architecture_passes_with_its_specs(tmp_path, model_type):
    tp, confs, specs, arch = TABLE[model_type]
    d = run(_model(tmp_path, model_type))
    st = statuses(d)
    assert d["deployable"] is True, [c for c in d["checks"] if c["status"] == "fail"]
    assert d["model_type"] == model_type and d["architectures"] == [arch]
    assert d["certified"] is True and st["architecture"] == "pass"
    assert d["tensor_parallel"] is tp
    assert sorted(d["software_specs"]) == sorted(specs)
    want = VLLM if VLLM in specs else specs[0]
    assert d["recommended_software_spec"] == want
    assert d["configuration"] == "small"
    assert d["parameters"] == 8 * 4 + 4 and d["parameters_exact"] is True
    if model_type == "tinytimemixer":
        assert d["family"] == "time_series"
        assert (st["tokenizer"], st["tsfm_config"]) == ("skip", "pass")
    else:
        assert d["family"] == "general"
        assert (st["tokenizer"], st["tsfm_config"]) == ("pass", "skip")
        assert all(s == "pass" for k, s in st.items() if k not in ("tsfm_config", "context")), st
    # This config.json names no layer or head sizes: the KV cache cannot be sized.
    assert st["context"] == "skip"


@pytest.mark.parametrize("model_type", ["codegen", "mt5", "t5"])
def test_codegen_mt5_t5_are_never_offered_the_vllm_spec(tmp_path, model_type):
    d = run(_model(tmp_path, model_type))
    assert d["software_specs"] == [TGI] and d["recommended_software_spec"] == TGI


@pytest.mark.parametrize("model_type", GENERAL)
def test_a_30b_model_gets_medium_only_with_tensor_parallelism(tmp_path, model_type):
    """30B 16-bit parameters: Medium where the row offers it, a size failure
    where the architecture has only Small."""
    tp = TABLE[model_type][0]
    d = run(_model(tmp_path, model_type, params=30_000_000_000))
    size = check(d, "size")
    if tp:
        assert (size["status"], d["configuration"], d["deployable"]) == ("pass", "medium", True)
    else:
        assert (size["status"], d["configuration"], d["deployable"]) == ("fail", None, False)
        assert "tensor parallelism" in size["message"]


@pytest.mark.parametrize("model_type", [m for m in GENERAL if TABLE[m][0]])
def test_a_100b_model_gets_large_with_tensor_parallelism(tmp_path, model_type):
    d = run(_model(tmp_path, model_type, params=100_000_000_000))
    assert d["configuration"] == "large" and d["deployable"] is True


@pytest.mark.parametrize("written", ["gpt-neox", "GPT-NeoX", "GPT_NEOX"])
def test_model_type_names_are_normalised(tmp_path, written):
    path = folder(tmp_path / "m", {"model_type": written, "architectures": ["GPTNeoXForCausalLM"]})
    real_safetensors(path / "model.safetensors")
    d = run(path)
    assert d["model_type"] == "gpt_neox" and d["certified"] is True
    assert check(d, "architecture")["status"] == "pass" and d["tensor_parallel"] is True


def test_upper_case_model_type_is_certified(tmp_path):
    path = folder(tmp_path / "m", {"model_type": "LLAMA", "architectures": ["LlamaForCausalLM"]})
    real_safetensors(path / "model.safetensors")
    d = run(path)
    assert d["model_type"] == "llama" and check(d, "architecture")["status"] == "pass"


@pytest.mark.parametrize("model_type, arch", [("qwen3", "Qwen3ForCausalLM"), ("starcoder2", "Starcoder2ForCausalLM"),
                                              ("qwen3_moe", "Qwen3MoeForCausalLM")])
def test_uncertified_vllm_architecture_warns_and_gets_the_vllm_spec_only(tmp_path, model_type, arch):
    path = folder(tmp_path / "m", {"model_type": model_type, "architectures": [arch]})
    real_safetensors(path / "model.safetensors")
    d = run(path)
    assert check(d, "architecture")["status"] == "warn"
    assert arch in check(d, "architecture")["message"]
    assert d["certified"] is False and d["deployable"] is True
    assert d["software_specs"] == [VLLM] and d["recommended_software_spec"] == VLLM
    assert d["configuration"] == "small"


@pytest.mark.parametrize("cfg", [
    # real configs: Kimi-K2 brings its config code (auto_map); Hunyuan's type is known to transformers
    {"model_type": "kimi_k2", "architectures": ["DeepseekV3ForCausalLM"],
     "auto_map": {"AutoConfig": "configuration_deepseek.DeepseekV3Config",
                  "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM"}},
    {"model_type": "hunyuan_v1_dense", "architectures": ["HunYuanDenseV1ForCausalLM"]},
    {"model_type": "nemotron-nas", "architectures": ["DeciLMForCausalLM"],
     "auto_map": {"AutoConfig": "configuration_decilm.DeciLMConfig"}},
])
def test_an_uncertified_vllm_architecture_whose_config_loads_warns_whatever_its_model_type_is_called(tmp_path, cfg):
    path = folder(tmp_path / "m", cfg)
    real_safetensors(path / "model.safetensors")
    d = run(path)
    assert check(d, "architecture")["status"] == "warn", check(d, "architecture")
    assert d["software_specs"] == [VLLM] and d["deployable"] is True


@pytest.mark.parametrize("model_type", [" llama ", "foo", "no_such_architecture_xyz"])
def test_a_model_type_nobody_can_load_fails_even_with_a_vllm_architecture(tmp_path, model_type):
    path = folder(tmp_path / "m", {"model_type": model_type, "architectures": ["LlamaForCausalLM"]})
    real_safetensors(path / "model.safetensors")
    d = run(path)
    c = check(d, "architecture")
    assert c["status"] == "fail" and "transformers" in c["message"] and "LlamaForCausalLM" in c["message"]
    assert d["certified"] is False and d["deployable"] is False


@pytest.mark.parametrize("cfg", [
    {"model_type": "bert", "architectures": ["BertModel"]},
    {"model_type": "my_secret_arch", "architectures": ["MySecretForCausalLM"]},
    {"model_type": "no_such_architecture_xyz", "architectures": ["LlamaForCausalLM"]},
    {"model_type": "whatever"},
])
def test_unknown_architecture_fails(tmp_path, cfg):
    path = folder(tmp_path / "m", cfg)
    real_safetensors(path / "model.safetensors")
    d = run(path)
    st = statuses(d)
    assert st["architecture"] == "fail" and st["software_spec"] == "fail"
    assert d["certified"] is False and d["deployable"] is False
    assert d["software_specs"] == [] and d["recommended_software_spec"] is None and d["configuration"] is None
