"""Parameters estimated from config.json when there are no safetensors
headers (only pytorch_model.bin, which is never opened): the published
configs of real models against their known parameter counts."""
from __future__ import annotations

import pytest
from inspect_support import check, folder, run

from cfm.inspection.estimate import estimate_parameters

# config.json as published on the Hub (the fields that matter), and the
# model's parameter count as its model card or safetensors index states it.
REAL = {
    "meta-llama/Meta-Llama-3-8B": ({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 128256,
        "tie_word_embeddings": False, "max_position_embeddings": 8192, "rope_theta": 500000.0,
        "torch_dtype": "bfloat16"}, 8_030_261_248),
    "mistralai/Mistral-7B-v0.3": ({
        "model_type": "mistral", "architectures": ["MistralForCausalLM"], "hidden_size": 4096,
        "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "vocab_size": 32768, "tie_word_embeddings": False, "sliding_window": None, "head_dim": 128},
        7_248_023_552),
    "Qwen/Qwen2-7B": ({
        "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584,
        "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
        "vocab_size": 152064, "tie_word_embeddings": False, "max_window_layers": 28}, 7_615_616_512),
    "google/gemma-2b": ({
        "model_type": "gemma", "architectures": ["GemmaForCausalLM"], "hidden_size": 2048, "head_dim": 256,
        "intermediate_size": 16384, "num_attention_heads": 8, "num_hidden_layers": 18, "num_key_value_heads": 1,
        "vocab_size": 256000}, 2_506_172_416),
    "tiiuae/falcon-7b": ({
        "model_type": "falcon", "architectures": ["FalconForCausalLM"], "hidden_size": 4544, "num_attention_heads": 71,
        "num_hidden_layers": 32, "vocab_size": 65024, "multi_query": True, "new_decoder_architecture": False,
        "parallel_attn": True, "bias": False, "alibi": False}, 6_921_720_704),
    "EleutherAI/pythia-12b": ({
        "model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"], "hidden_size": 5120,
        "intermediate_size": 20480, "num_attention_heads": 40, "num_hidden_layers": 36, "vocab_size": 50688,
        "rotary_pct": 0.25, "use_parallel_residual": True, "tie_word_embeddings": False}, 11_846_072_320),
    "microsoft/phi-2": ({
        "model_type": "phi", "architectures": ["PhiForCausalLM"], "hidden_size": 2560, "intermediate_size": 10240,
        "num_attention_heads": 32, "num_hidden_layers": 32, "vocab_size": 51200, "partial_rotary_factor": 0.4,
        "tie_word_embeddings": False}, 2_779_683_840),
    "openai-community/gpt2-large": ({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 1280, "n_head": 20, "n_layer": 36,
        "n_positions": 1024, "n_ctx": 1024, "n_inner": None, "vocab_size": 50257}, 774_030_080),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_estimate_is_within_one_percent_of_the_real_count(tmp_path, name):
    cfg, real = REAL[name]
    path = folder(tmp_path / "m", cfg)
    (path / "pytorch_model.bin").write_bytes(b"\x80\x04not a real pickle and never read")
    d = run(path)
    assert abs(d["parameters"] - real) / real < 0.01, (d["parameters"], real)
    assert d["parameters_exact"] is False
    assert d["weight_bytes"] is None and d["serving_bytes"] is None
    assert d["configuration"] == "small"
    size = check(d, "size")
    assert size["status"] == "pass" and "estimated" in size["message"]
    assert check(d, "weights_format")["status"] == "warn"


def test_an_estimated_30b_llama_is_medium(tmp_path):
    cfg = dict(REAL["meta-llama/Meta-Llama-3-8B"][0], hidden_size=6656, intermediate_size=17920,
               num_attention_heads=52, num_key_value_heads=52, num_hidden_layers=60, vocab_size=32000)
    path = folder(tmp_path / "m", cfg)
    (path / "pytorch_model.bin").write_bytes(b"x")
    d = run(path)
    assert 32.0e9 < d["parameters"] < 32.8e9 and d["configuration"] == "medium"  # llama-30b: 32.5B


def test_estimate_needs_the_sizes(tmp_path):
    path = folder(tmp_path / "m", {"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    (path / "pytorch_model.bin").write_bytes(b"x")
    d = run(path)
    assert d["parameters"] is None and d["configuration"] is None
    assert check(d, "size")["status"] == "skip"


@pytest.mark.parametrize("bad", [True, -4096, 0, 4096.0, "4096", None, [4096], 10 ** 4000, float("inf")])
def test_estimate_ignores_sizes_that_are_not_positive_ints(bad):
    cfg = dict(REAL["meta-llama/Meta-Llama-3-8B"][0], hidden_size=bad)
    assert estimate_parameters(cfg) is None


def test_estimate_of_absurd_but_valid_sizes_stays_a_number(tmp_path):
    cfg = dict(REAL["meta-llama/Meta-Llama-3-8B"][0], hidden_size=2 ** 40, num_hidden_layers=2 ** 40)
    path = folder(tmp_path / "m", cfg)
    (path / "pytorch_model.bin").write_bytes(b"x")
    d = run(path)
    assert d["parameters"] > 10 ** 30 and check(d, "size")["status"] == "fail"


def test_t5_estimate(tmp_path):
    # google/flan-t5-large: 783,150,080 parameters
    cfg = {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "d_model": 1024, "d_ff": 2816,
           "d_kv": 64, "num_heads": 16, "num_layers": 24, "num_decoder_layers": 24, "vocab_size": 32128,
           "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}
    est = estimate_parameters(cfg)
    assert abs(est - 783_150_080) / 783_150_080 < 0.01


@pytest.mark.parametrize("ratio", [float("inf"), float("nan"), 1e308, -1, "4", True])
def test_mpt_expansion_ratio_that_is_not_a_ratio_falls_back(ratio):
    cfg = {"model_type": "mpt", "d_model": 4096, "n_layers": 32, "n_heads": 32, "vocab_size": 50432,
           "expansion_ratio": ratio}
    default = estimate_parameters({**cfg, "expansion_ratio": 4})
    assert 6.6e9 < default < 6.8e9  # mosaicml/mpt-7b: 6.65B
    assert estimate_parameters(cfg) == default


# More families, from their published configs (model-card sizes, rounded).
MORE = {
    "bigscience/bloom-3b": ({"model_type": "bloom", "hidden_size": 2560, "n_layer": 30, "n_head": 32,
                             "vocab_size": 250880}, 3.00e9),
    "mistralai/Mixtral-8x7B-v0.1": ({"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336,
                                     "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                                     "num_local_experts": 8, "vocab_size": 32000, "tie_word_embeddings": False},
                                    46.70e9),
    "bigcode/starcoder": ({"model_type": "gpt_bigcode", "n_embd": 6144, "n_layer": 40, "n_head": 48,
                           "multi_query": True, "n_inner": 24576, "vocab_size": 49152, "n_positions": 8192}, 15.5e9),
    "google/gemma-2-9b": ({"model_type": "gemma2", "hidden_size": 3584, "num_hidden_layers": 42,
                           "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256,
                           "intermediate_size": 14336, "vocab_size": 256000}, 9.24e9),
    "microsoft/Phi-3-mini-4k-instruct": ({"model_type": "phi3", "hidden_size": 3072, "num_hidden_layers": 32,
                                          "num_attention_heads": 32, "num_key_value_heads": 32,
                                          "intermediate_size": 8192, "vocab_size": 32064,
                                          "tie_word_embeddings": False}, 3.82e9),
    "mosaicml/mpt-7b": ({"model_type": "mpt", "d_model": 4096, "n_layers": 32, "n_heads": 32, "expansion_ratio": 4,
                         "vocab_size": 50432}, 6.65e9),
    "EleutherAI/gpt-j-6b": ({"model_type": "gptj", "n_embd": 4096, "n_layer": 28, "n_head": 16, "vocab_size": 50400,
                             "rotary_dim": 64, "n_inner": None, "tie_word_embeddings": False}, 6.05e9),
    "Salesforce/codegen-16B-mono": ({"model_type": "codegen", "n_embd": 6144, "n_layer": 34, "n_head": 24,
                                     "vocab_size": 51200, "n_inner": None, "tie_word_embeddings": False}, 16.03e9),
}


@pytest.mark.parametrize("name", sorted(MORE))
def test_more_families_estimate_within_one_percent(name):
    cfg, real = MORE[name]
    assert abs(estimate_parameters(cfg) - real) / real < 0.01


BERT_BASE = {"model_type": "bert", "architectures": ["BertForMaskedLM"], "hidden_size": 768,
             "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, "vocab_size": 30522,
             "max_position_embeddings": 512, "type_vocab_size": 2}


@pytest.mark.parametrize("cfg", [
    BERT_BASE,
    dict(BERT_BASE, model_type="roberta", architectures=["RobertaForMaskedLM"], vocab_size=50265),
    {"model_type": "vit", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
     "intermediate_size": 3072, "vocab_size": 1},
    dict(BERT_BASE, model_type="some_new_arch"),
])
def test_an_architecture_the_estimate_does_not_know_gets_no_estimate(cfg):
    """bert-base-uncased has 110M parameters; counted as a gated decoder it came out 65% too high."""
    assert estimate_parameters(cfg) is None


def test_a_bin_only_bert_has_no_parameter_figure(tmp_path):
    path = folder(tmp_path / "bert", BERT_BASE)
    (path / "pytorch_model.bin").write_bytes(b"x")
    d = run(path)
    assert d["parameters"] is None and d["parameters_exact"] is False
