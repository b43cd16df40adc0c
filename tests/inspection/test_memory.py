"""The report's memory, context_length, verdict and context check
(report-contract.md, "Memory and the verdict at a glance"), each expected
figure computed here from the contract's formula, not from cfm's code."""
from __future__ import annotations

import pytest
from inspect_support import check, folder, llama_cfg, real_safetensors, run, statuses
from modelfactory import llama_config, llama_tensors, make_model, write_json

from cfm.catalog import TSFM_CONFIG_TEMPLATE

GIB = 2**30
GPUS = {"small": 1, "medium": 2, "large": 4}


def expected_memory(serving: int, per_token: int | None, confs=("small", "medium", "large"),
                    estimated: bool = False) -> dict:
    out = {}
    for c in confs:
        g = GPUS[c]
        free = g * 72_000_000_000 - serving - g * 2 * GIB
        out[c] = {"gpus": g, "gpu_memory_bytes": g * 80_000_000_000, "fits": free > 0, "free_bytes": free,
                  "kv_cache_tokens": None if per_token is None else (free // per_token if free > 0 else 0)}
    return {"kv_cache_bytes_per_token": per_token, "configurations": out, "weights_estimated": estimated}


def one_tensor(tmp_path, cfg, values: int, dtype="BF16", name="m"):
    """A folder whose weights are one sparse tensor of `values` elements."""
    return folder(tmp_path / name, cfg, {"model.weight": (dtype, [values])})


def test_dense_llama_matches_the_contracts_example(tmp_path):
    # The contract's example: Llama 3.1 8B, 16,060,522,496 serving bytes, 131,072 bytes a token.
    cfg = llama_config()  # 32 layers, 32 heads, 8 key/value heads, hidden 4096
    path = make_model(tmp_path / "l8", cfg, llama_tensors(cfg))
    d = run(path)
    per_token = 2 * 32 * 8 * (4096 // 32) * 2
    assert per_token == 131072
    assert d["memory"] == expected_memory(d["serving_bytes"], per_token)
    if d["serving_bytes"] == 16060522496:
        assert d["memory"]["configurations"]["small"]["free_bytes"] == 53791993856
        assert d["memory"]["configurations"]["small"]["kv_cache_tokens"] == 410400


def test_dense_without_key_value_heads_uses_the_attention_heads(tmp_path):
    cfg = llama_cfg(num_hidden_layers=40, num_attention_heads=40, hidden_size=5120, max_position_embeddings=4096)
    del cfg["num_key_value_heads"]
    d = run(one_tensor(tmp_path, cfg, 13_000_000_000))
    per_token = 2 * 40 * 40 * (5120 // 40) * 2
    assert d["memory"] == expected_memory(2 * 13_000_000_000, per_token)
    assert d["context_length"] == 4096


def test_grouped_query_attention(tmp_path):
    cfg = llama_cfg(num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8, hidden_size=8192)
    d = run(one_tensor(tmp_path, cfg, 70_000_000_000))
    per_token = 2 * 80 * 8 * 128 * 2
    assert d["configuration"] == "large"
    assert d["memory"] == expected_memory(140_000_000_000, per_token)
    # 70B in 16 bits fills Small and Medium: they do not fit, and hold no KV cache.
    assert d["memory"]["configurations"]["small"]["fits"] is False
    assert d["memory"]["configurations"]["small"]["kv_cache_tokens"] == 0
    assert d["memory"]["configurations"]["medium"]["fits"] is False


def test_multi_query_falcon(tmp_path):
    cfg = {"model_type": "falcon", "architectures": ["FalconForCausalLM"], "hidden_size": 4544, "n_layer": 32,
           "n_head": 71, "multi_query": True, "vocab_size": 65024, "torch_dtype": "bfloat16"}
    d = run(one_tensor(tmp_path, cfg, 7_000_000_000))
    per_token = 2 * 32 * 1 * (4544 // 71) * 2
    assert d["memory"] == expected_memory(14_000_000_000, per_token)
    assert d["context_length"] is None  # falcon-7b's config names none of the keys


def test_explicit_key_value_heads_win_over_multi_query(tmp_path):
    cfg = {"model_type": "falcon", "architectures": ["FalconForCausalLM"], "hidden_size": 8192, "n_layer": 60,
           "n_head": 128, "num_kv_heads": 8, "multi_query": True, "new_decoder_architecture": True,
           "vocab_size": 65024}
    d = run(one_tensor(tmp_path, cfg, 40_000_000_000))
    assert d["memory"]["kv_cache_bytes_per_token"] == 2 * 60 * 8 * 64 * 2


def test_head_dim_wins_over_hidden_size_by_heads(tmp_path):
    cfg = {"model_type": "gemma", "architectures": ["GemmaForCausalLM"], "hidden_size": 3072,
           "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 256,
           "max_position_embeddings": 8192, "vocab_size": 256000}
    d = run(one_tensor(tmp_path, cfg, 8_500_000_000))
    assert d["memory"]["kv_cache_bytes_per_token"] == 2 * 28 * 16 * 256 * 2
    assert d["context_length"] == 8192


@pytest.mark.parametrize("model_type", ["t5", "mt5"])
def test_encoder_decoder_caches_the_decoders_layers(tmp_path, model_type):
    cfg = {"model_type": model_type, "architectures": ["T5ForConditionalGeneration"], "d_model": 1024,
           "num_layers": 24, "num_decoder_layers": 12, "num_heads": 16, "d_kv": 64, "d_ff": 2816,
           "vocab_size": 32128, "n_positions": 512}
    d = run(one_tensor(tmp_path, cfg, 700_000_000))
    confs = ("small", "medium", "large") if model_type == "t5" else ("small",)  # mt5: no tensor parallelism
    assert d["memory"] == expected_memory(1_400_000_000, 2 * 12 * 16 * 64 * 2, confs)
    assert d["context_length"] == 512
    # Without num_decoder_layers, the decoder has num_layers.
    del cfg["num_decoder_layers"]
    d = run(one_tensor(tmp_path, cfg, 700_000_000, name="same"))
    assert d["memory"]["kv_cache_bytes_per_token"] == 2 * 24 * 16 * 64 * 2


def test_quantized_model_frees_memory_by_its_stored_bytes(tmp_path):
    # A 4-bit GPTQ mixtral: packed int32 weights and F16 scales; memory follows the serving bytes.
    cfg = {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "hidden_size": 4096,
           "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "max_position_embeddings": 32768, "vocab_size": 32000,
           "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}
    tensors = {"model.layers.0.mlp.qweight": ("I32", [1_500_000_000]), "model.layers.0.mlp.scales": ("F16", [1000]),
               "model.embed_tokens.weight": ("F16", [500_000_000])}
    d = run(folder(tmp_path / "q", cfg, tensors))
    serving = 1_500_000_000 * 4 + 1000 * 2 + 500_000_000 * 2
    assert d["serving_bytes"] == serving and d["configuration"] == "small"
    assert d["memory"] == expected_memory(serving, 2 * 32 * 8 * 128 * 2, ("small",))  # mixtral: Small only
    assert d["parameters"] == 1_500_000_000 * 8 + 500_000_000


def test_f32_weights_are_served_in_16_bits(tmp_path):
    cfg = llama_cfg(num_hidden_layers=2, num_attention_heads=4, hidden_size=256)
    d = run(one_tensor(tmp_path, cfg, 1_000_000, dtype="F32"))
    assert d["memory"] == expected_memory(2_000_000, 2 * 2 * 2 * 64 * 2)  # llama_cfg: 2 key/value heads


@pytest.mark.parametrize("drop", ["num_hidden_layers", "num_attention_heads", "hidden_size"])
def test_missing_fields_give_null_bytes_per_token(tmp_path, drop):
    cfg = llama_cfg(num_hidden_layers=32, num_attention_heads=32, hidden_size=4096)
    cfg.pop(drop)
    if drop != "num_attention_heads":
        cfg.pop("num_key_value_heads")
    d = run(one_tensor(tmp_path, cfg, 8_000_000_000))
    assert d["memory"] == expected_memory(16_000_000_000, None)
    assert all(c["kv_cache_tokens"] is None for c in d["memory"]["configurations"].values())
    assert check(d, "context")["status"] == "skip"


def test_bad_values_count_as_missing(tmp_path):
    cfg = llama_cfg(num_hidden_layers=True, num_attention_heads="32", hidden_size=-4096, head_dim=None,
                    max_position_embeddings=0, n_positions=2048)
    cfg.pop("num_key_value_heads")
    d = run(one_tensor(tmp_path, cfg, 1000))
    assert d["memory"]["kv_cache_bytes_per_token"] is None
    assert d["context_length"] == 2048  # the first key that holds a positive integer


def test_context_length_keys_in_the_contracts_order(tmp_path):
    keys = ["max_position_embeddings", "n_positions", "max_seq_len", "max_sequence_length", "seq_length",
            "model_max_length"]
    for i, key in enumerate(keys):
        cfg = llama_cfg(**{k: 1000 * (j + 1) for j, k in enumerate(keys[i:], start=i)})
        d = run(one_tensor(tmp_path, cfg, 1000, name=key))
        assert d["context_length"] == 1000 * (i + 1), key


def test_time_series_has_no_memory(tmp_path):
    ttm = folder(tmp_path / "ttm", {"model_type": "tinytimemixer", "context_length": 512}, tokenizer=False)
    real_safetensors(ttm / "model.safetensors")
    write_json(ttm / "tsfm_config.json", TSFM_CONFIG_TEMPLATE)
    d = run(ttm)
    assert d["memory"] is None and d["context_length"] is None
    assert check(d, "context")["status"] == "skip"


def test_no_weights_sizes_from_the_estimate(tmp_path):
    cfg = llama_config()
    path = folder(tmp_path / "bin", cfg)
    (path / "pytorch_model.bin").write_bytes(b"x")
    d = run(path)
    assert d["serving_bytes"] is None and d["parameters_exact"] is False
    # sized, as the size check is, from the estimated parameters in 16 bits, and said so
    assert d["memory"] == expected_memory(d["parameters"] * 2, 131072, estimated=True)


def test_no_config_has_no_memory(tmp_path):
    path = folder(tmp_path / "nc", None, {"model.weight": ("BF16", [10])})
    d = run(path)
    assert d["memory"] is None and d["context_length"] is None
    assert check(d, "context")["status"] == "skip"


# -- the context check ---------------------------------------------------------------------------------------
def test_context_passes_when_one_default_sequence_fits(tmp_path):
    cfg = llama_config()
    cfg["max_position_embeddings"] = 131072
    d = run(one_tensor(tmp_path, cfg, 8_000_000_000))
    c = check(d, "context")
    tokens = (72_000_000_000 - 16_000_000_000 - 2 * GIB) // 131072
    assert c["status"] == "pass" and c["remedy"] is None
    assert f"{tokens}" in c["message"] and "Small" in c["message"]
    assert c["params"]["length"] == 2048  # min(context_length, 2048)


def _tight(tmp_path, layers: int, name: str, *, tp=True):
    """A 25B model (Small) whose KV cache is so large per token that few tokens fit."""
    model_type, arch = ("llama", "LlamaForCausalLM") if tp else ("mistral", "MistralForCausalLM")
    cfg = {"model_type": model_type, "architectures": [arch], "hidden_size": 16384, "num_hidden_layers": layers,
           "num_attention_heads": 128, "max_position_embeddings": 32768, "vocab_size": 32000}
    return run(one_tensor(tmp_path, cfg, 25_000_000_000, name=name))


def test_context_warns_with_the_largest_length_and_the_next_configuration(tmp_path):
    d = _tight(tmp_path, 1000, "tight")
    per_token = 2 * 1000 * 128 * 128 * 2
    small = (72_000_000_000 - 50_000_000_000 - 2 * GIB) // per_token
    medium = (144_000_000_000 - 50_000_000_000 - 4 * GIB) // per_token
    assert 20 <= small < 2048
    c = check(d, "context")
    assert c["status"] == "warn" and d["deployable"] is True
    assert f"at most {small}" in c["remedy"] and "Medium" in c["remedy"] and str(medium) in c["remedy"]


def test_context_warns_without_a_next_configuration_for_small_only_architectures(tmp_path):
    d = _tight(tmp_path, 1000, "tight_notp", tp=False)
    c = check(d, "context")
    assert c["status"] == "warn" and "no larger configuration" in c["remedy"]
    assert "Medium" not in c["remedy"]


def test_context_below_the_minimum_sequence_length_names_only_the_next_configuration(tmp_path):
    d = _tight(tmp_path, 100_000, "none")
    c = check(d, "context")
    assert c["status"] == "warn" and "max_sequence_length at most" not in c["remedy"] and "Medium" in c["remedy"]


# -- the verdict --------------------------------------------------------------------------------------------
def test_verdict_ready_prepare_uncertified_refused(tmp_path):
    ready = folder(tmp_path / "ready", llama_cfg())
    real_safetensors(ready / "model.safetensors")
    assert run(ready)["verdict"] == "ready"

    prepare = folder(tmp_path / "prepare", llama_cfg(), tokenizer=False)
    (prepare / "pytorch_model.bin").write_bytes(b"x")
    (prepare / "tokenizer.model").write_bytes(b"x")
    d = run(prepare)
    assert d["deployable"] is True and d["preparation"] and d["verdict"] == "prepare"

    unc = folder(tmp_path / "unc", {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]})
    real_safetensors(unc / "model.safetensors")
    d = run(unc)
    assert statuses(d)["architecture"] == "warn" and d["verdict"] == "uncertified"

    # uncertified beats prepare: a .bin-only uncertified model
    both = folder(tmp_path / "both", {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]})
    (both / "pytorch_model.bin").write_bytes(b"x")
    d = run(both)
    assert d["preparation"] and d["verdict"] == "uncertified"

    quant = folder(tmp_path / "quant", llama_cfg(quantization_config={"quant_method": "bitsandbytes"}))
    real_safetensors(quant / "model.safetensors")
    assert run(quant)["verdict"] == "uncertified"

    # refused beats everything: a failure with preparation steps and an uncertified architecture
    refused = folder(tmp_path / "refused", {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]})
    real_safetensors(refused / "model.safetensors", metadata={"format": "mlx"})
    d = run(refused)
    assert d["deployable"] is False and d["verdict"] == "refused"


def test_rope_remedy_names_the_spec_with_new_transformers(tmp_path):
    path = folder(tmp_path / "l31", llama_cfg(rope_scaling={"rope_type": "llama3", "factor": 8.0}))
    real_safetensors(path / "model.safetensors")
    c = check(run(path), "known_issues")
    assert c["status"] == "warn"
    assert "Deploy with watsonx-cfm-caikit-1.1" in c["remedy"] and "watsonx-cfm-caikit-1.0" in c["remedy"]
    assert "4.43" in c["remedy"] and '"factor": 8.0' in c["remedy"]
