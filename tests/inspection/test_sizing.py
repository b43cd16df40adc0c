"""Sizing by serving bytes (platform-rules section 4): the inclusive bounds
of Small, Medium and Large in 16-bit-equivalent parameters, F32 counted at
2 bytes a value, packed 4-bit weights unpacked, and real model shapes
(sparse files: a real header, then a hole)."""
from __future__ import annotations

import pytest
from inspect_support import check, folder, llama_cfg, run
from modelfactory import (
    LLAMA3_8B,
    LLAMA3_70B,
    LLAMA31_405B,
    count,
    llama_tensors,
    make_model,
)


def _single(tmp_path, n, dtype="BF16", model_type="llama", **cfg):
    c = {"model_type": model_type, "architectures": ["X"], **cfg}
    return run(folder(tmp_path / "m", c, {"w": (dtype, [n])}))


@pytest.mark.parametrize("n, conf", [
    (26_000_000_000 - 1, "small"), (26_000_000_000, "small"), (26_000_000_001, "medium"),
    (53_000_000_000, "medium"), (53_000_000_001, "large"),
    (106_000_000_000, "large"),
])
def test_bounds_are_inclusive_16bit_parameters(tmp_path, n, conf):
    d = _single(tmp_path, n)
    assert d["configuration"] == conf and check(d, "size")["status"] == "pass"
    assert (d["parameters"], d["weight_bytes"], d["serving_bytes"]) == (n, 2 * n, 2 * n)


def test_just_over_large_fails_as_too_large(tmp_path):
    d = _single(tmp_path, 106_000_000_001)
    c = check(d, "size")
    assert (c["status"], d["configuration"], d["deployable"]) == ("fail", None, False)
    assert "Large" in c["message"]


@pytest.mark.parametrize("n, conf", [(26_000_000_000, "small"), (26_000_000_001, "medium")])
def test_f32_counts_two_serving_bytes_a_value(tmp_path, n, conf):
    d = _single(tmp_path, n, "F32")
    assert d["weight_bytes"] == 4 * n and d["serving_bytes"] == 2 * n and d["parameters"] == n
    assert d["configuration"] == conf


@pytest.mark.parametrize("nbytes, conf", [(52_000_000_000, "small"), (52_000_000_001, "medium"),
                                          (106_000_000_000, "medium"), (106_000_000_001, "large")])
def test_byte_tensors_size_by_serving_bytes_over_two(tmp_path, nbytes, conf):
    """An odd number of serving bytes is half a parameter over the bound."""
    d = _single(tmp_path, nbytes, "U8")
    assert d["serving_bytes"] == nbytes and d["configuration"] == conf


@pytest.mark.parametrize("model_type", ["mistral", "mixtral", "mpt", "gpt2", "codegen", "granite"])
def test_without_tensor_parallelism_only_small(tmp_path, model_type):
    assert _single(tmp_path, 26_000_000_000, model_type=model_type)["configuration"] == "small"
    d = _single(tmp_path / "b", 26_000_000_001, model_type=model_type)
    c = check(d, "size")
    assert (c["status"], d["configuration"]) == ("fail", None)
    assert "tensor parallelism" in c["message"] and "Small" in c["message"]


def test_uncertified_vllm_model_gets_medium(tmp_path):
    d = _single(tmp_path, 30_000_000_000, model_type="qwen3", architectures=["Qwen3ForCausalLM"])
    assert d["configuration"] == "medium" and d["tensor_parallel"] is None


# -- quantized weights ------------------------------------------------------------------------------------------
def gptq_linear(prefix: str, out_f: int, in_f: int, bits=4, group=128) -> dict:
    """The tensors AutoGPTQ writes for one nn.Linear(in_f, out_f)."""
    per = 32 // bits
    return {
        prefix + ".qweight": ("I32", [in_f // per, out_f]),
        prefix + ".qzeros": ("I32", [in_f // group, out_f // per]),
        prefix + ".scales": ("F16", [in_f // group, out_f]),
        prefix + ".g_idx": ("I32", [in_f]),
    }


@pytest.mark.parametrize("bits", [4, 8])
def test_gptq_qweight_counts_the_values_it_packs(tmp_path, bits):
    tensors = {"model.embed_tokens.weight": ("F16", [1000, 512]), "model.norm.weight": ("F16", [512])}
    tensors.update(gptq_linear("model.layers.0.mlp.up_proj", 1024, 512, bits))
    cfg = llama_cfg(quantization_config={"quant_method": "gptq", "bits": bits, "group_size": 128})
    d = run(folder(tmp_path / "m", cfg, tensors))
    assert d["parameters"] == 1000 * 512 + 512 + 1024 * 512
    assert d["quantization"] == "gptq" and check(d, "quantization")["status"] == "pass"
    stored = 2 * (1000 * 512 + 512) + 1024 * 512 * bits // 8 + 4 * (4 * 1024 * bits // 32) + 2 * 4 * 1024 + 4 * 512
    assert d["weight_bytes"] == d["serving_bytes"] == stored
    assert d["dtypes"] == {"F16": 3, "I32": 3}


def test_awq_qweight_is_unpacked_too(tmp_path):
    tensors = {"model.layers.0.mlp.up_proj.qweight": ("I32", [512, 128]),  # in x out/8
               "model.layers.0.mlp.up_proj.qzeros": ("I32", [4, 128]),
               "model.layers.0.mlp.up_proj.scales": ("F16", [4, 1024])}
    cfg = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
           "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm"}}
    d = run(folder(tmp_path / "m", cfg, tensors))
    assert d["parameters"] == 512 * 1024 and check(d, "quantization")["status"] == "pass"


MIXTRAL = {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "hidden_size": 4096,
           "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000,
           "tie_word_embeddings": False}
MIXTRAL_PARAMS = 46_702_792_704  # mistralai/Mixtral-8x7B-v0.1


def mixtral_tensors(gptq: bool) -> dict:
    h, inter, kv = 4096, 14336, 1024
    t = {"model.embed_tokens.weight": ("BF16", [32000, h]), "lm_head.weight": ("BF16", [32000, h]),
         "model.norm.weight": ("BF16", [h])}

    def linear(name, out_f, in_f):
        if gptq:
            t.update(gptq_linear(name, out_f, in_f))
        else:
            t[name + ".weight"] = ("BF16", [out_f, in_f])

    for i in range(32):
        p = f"model.layers.{i}."
        for proj, out_f in (("q_proj", h), ("k_proj", kv), ("v_proj", kv), ("o_proj", h)):
            linear(p + "self_attn." + proj, out_f, h)
        t[p + "block_sparse_moe.gate.weight"] = ("BF16", [8, h])
        for e in range(8):
            q = f"{p}block_sparse_moe.experts.{e}."
            linear(q + "w1", inter, h)
            linear(q + "w3", inter, h)
            linear(q + "w2", h, inter)
        t[p + "input_layernorm.weight"] = ("BF16", [h])
        t[p + "post_attention_layernorm.weight"] = ("BF16", [h])
    return t


def test_4bit_gptq_mixtral_fits_small(tmp_path):
    cfg = {**MIXTRAL, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}
    d = run(folder(tmp_path / "m", cfg, mixtral_tensors(gptq=True)))
    assert d["parameters"] == MIXTRAL_PARAMS and d["parameters_exact"] is True
    assert d["serving_bytes"] < 26e9 and d["configuration"] == "small"
    assert d["deployable"] is True and d["tensor_parallel"] is False
    assert check(d, "quantization")["status"] == "pass"


def test_16bit_mixtral_fails_without_tensor_parallelism(tmp_path):
    d = run(folder(tmp_path / "m", MIXTRAL, mixtral_tensors(gptq=False)))
    assert d["parameters"] == MIXTRAL_PARAMS
    c = check(d, "size")
    assert (c["status"], d["configuration"], d["deployable"]) == ("fail", None, False)
    assert "tensor parallelism" in c["message"]


def test_mpt_30b_fails(tmp_path):
    h, layers, vocab = 7168, 48, 50432
    t = {"transformer.wte.weight": ("BF16", [vocab, h]), "transformer.norm_f.weight": ("BF16", [h])}
    for i in range(layers):
        p = f"transformer.blocks.{i}."
        t.update({p + "norm_1.weight": ("BF16", [h]), p + "attn.Wqkv.weight": ("BF16", [3 * h, h]),
                  p + "attn.out_proj.weight": ("BF16", [h, h]), p + "norm_2.weight": ("BF16", [h]),
                  p + "ffn.up_proj.weight": ("BF16", [4 * h, h]), p + "ffn.down_proj.weight": ("BF16", [h, 4 * h])})
    cfg = {"model_type": "mpt", "architectures": ["MPTForCausalLM"], "d_model": h, "n_layers": layers,
           "n_heads": 64, "expansion_ratio": 4, "vocab_size": vocab}
    d = run(folder(tmp_path / "m", cfg, t))
    assert 29.9e9 < d["parameters"] < 30.0e9
    assert check(d, "size")["status"] == "fail" and d["deployable"] is False


def test_jais_13b_stored_in_f32_is_small(tmp_path):
    h, layers, inner, vocab = 5120, 40, 13653, 84992
    t = {"transformer.wte.weight": ("F32", [vocab, h]), "transformer.ln_f.weight": ("F32", [h]),
         "transformer.ln_f.bias": ("F32", [h])}
    for i in range(layers):
        p = f"transformer.h.{i}."
        t.update({p + "ln_1.weight": ("F32", [h]), p + "ln_1.bias": ("F32", [h]),
                  p + "attn.c_attn.weight": ("F32", [h, 3 * h]), p + "attn.c_attn.bias": ("F32", [3 * h]),
                  p + "attn.c_proj.weight": ("F32", [h, h]), p + "attn.c_proj.bias": ("F32", [h]),
                  p + "ln_2.weight": ("F32", [h]), p + "ln_2.bias": ("F32", [h]),
                  p + "mlp.c_fc.weight": ("F32", [h, inner]), p + "mlp.c_fc.bias": ("F32", [inner]),
                  p + "mlp.c_fc2.weight": ("F32", [h, inner]), p + "mlp.c_fc2.bias": ("F32", [inner]),
                  p + "mlp.c_proj.weight": ("F32", [inner, h]), p + "mlp.c_proj.bias": ("F32", [h])})
    cfg = {"model_type": "jais", "architectures": ["JAISLMHeadModel"], "n_embd": h, "n_layer": layers,
           "n_head": 40, "n_inner": inner, "vocab_size": vocab, "auto_map": {"AutoModelForCausalLM":
                                                                             "modeling_jais.JAISLMHeadModel"}}
    d = run(folder(tmp_path / "m", cfg, t))
    assert 12.9e9 < d["parameters"] < 13.1e9 and d["dtypes"] == {"F32": len(t)}
    assert d["weight_bytes"] == 2 * d["serving_bytes"] > 52e9
    assert d["configuration"] == "small" and d["deployable"] is True


def test_4bit_70b_llama_is_small(tmp_path):
    cfg = {**LLAMA3_70B, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}
    h, inter, kv = 8192, 28672, 1024
    t = {"model.embed_tokens.weight": ("F16", [128256, h]), "lm_head.weight": ("F16", [128256, h]),
         "model.norm.weight": ("F16", [h])}
    for i in range(80):
        p = f"model.layers.{i}."
        for name, out_f, in_f in (("self_attn.q_proj", h, h), ("self_attn.k_proj", kv, h),
                                  ("self_attn.v_proj", kv, h), ("self_attn.o_proj", h, h),
                                  ("mlp.gate_proj", inter, h), ("mlp.up_proj", inter, h), ("mlp.down_proj", h, inter)):
            t.update(gptq_linear(p + name, out_f, in_f))
        t[p + "input_layernorm.weight"] = ("F16", [h])
        t[p + "post_attention_layernorm.weight"] = ("F16", [h])
    d = run(folder(tmp_path / "m", cfg, t))
    assert d["parameters"] == count(llama_tensors(LLAMA3_70B))
    assert d["configuration"] == "small"


# -- real shapes, sharded as save_pretrained does --------------------------------------------------------------
@pytest.mark.parametrize("cfg, shards, params, conf", [
    (LLAMA3_8B, 4, 8_030_261_248, "small"),
    (LLAMA3_70B, 30, 70_553_706_496, "large"),
    (LLAMA31_405B, 191, 405_853_388_800, None),
])
def test_llama_8b_70b_405b(tmp_path, cfg, shards, params, conf):
    path = tmp_path / "m"
    make_model(path, cfg, shards=shards)
    d = run(path)
    assert d["parameters"] == params and d["parameters_exact"] is True
    assert d["weight_bytes"] == d["serving_bytes"] == 2 * params and d["dtypes"] == {"BF16": d["dtypes"]["BF16"]}
    assert d["configuration"] == conf
    assert check(d, "safetensors_index")["status"] == "pass"
    assert d["extra" if False else "files"]["bytes_read"] < 2_000_000  # headers and small files, never weights
    if conf is None:
        c = check(d, "size")
        assert c["status"] == "fail" and "Large" in c["message"]
        assert check(d, "known_issues")["status"] == "warn"  # Llama 3.1 rope_scaling
    else:
        assert d["deployable"] is True
