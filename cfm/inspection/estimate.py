"""Parameter count estimated from config.json, for models without
safetensors headers. Covers the decoder-only families (llama, mistral,
mixtral, qwen, qwen2, gemma, falcon, gpt_neox, phi, gpt2, bloom, mpt, ...)
and T5/mT5, as listed in cfm.catalog.ESTIMATED_MODEL_TYPES, and nothing
else; biases are left out (well under 1%)."""
from __future__ import annotations

from typing import Any

from cfm.catalog import (
    DEFAULT_TIED_EMBEDDINGS,
    ESTIMATED_MODEL_TYPES,
    LEARNED_POSITIONS,
    UNGATED_MLP,
    normalize_model_type,
)


def _first_int(cfg: dict, *keys: str) -> int | None:
    for key in keys:
        value = cfg.get(key)
        # A hostile config may hold a 4,000-digit "size": past 2**63 it is no size at all (and
        # products of such numbers could not be printed or turned into floats).
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
            return value
    return None


def _t5(cfg: dict) -> int | None:
    d = _first_int(cfg, "d_model")
    ff = _first_int(cfg, "d_ff")
    layers = _first_int(cfg, "num_layers")
    dec = _first_int(cfg, "num_decoder_layers") or layers
    heads = _first_int(cfg, "num_heads")
    d_kv = _first_int(cfg, "d_kv") or (d // heads if d and heads else None)
    vocab = _first_int(cfg, "vocab_size")
    if not all((d, ff, layers, heads, d_kv, vocab)):
        return None
    assert d and ff and layers and dec and heads and d_kv and vocab
    inner = heads * d_kv
    gated = str(cfg.get("feed_forward_proj", "relu")).startswith("gated")
    mlp = (3 if gated else 2) * d * ff
    attn = 4 * d * inner
    encoder = layers * (attn + mlp + 2 * d) + d
    decoder = dec * (2 * attn + mlp + 3 * d) + d
    tied = cfg.get("tie_word_embeddings", normalize_model_type(str(cfg.get("model_type"))) == "t5")
    return encoder + decoder + vocab * d * (1 if tied else 2)


def estimate_parameters(cfg: dict[str, Any]) -> int | None:
    """Parameters of the model config.json describes, or None if the fields
    needed are missing or the architecture is not one the estimate knows
    (an encoder's layers are not a decoder's: no figure beats a wrong one)."""
    model_type = normalize_model_type(str(cfg.get("model_type", "")))
    if model_type not in ESTIMATED_MODEL_TYPES:
        return None
    if model_type in ("t5", "mt5"):
        return _t5(cfg)
    text = cfg.get("text_config")
    if isinstance(text, dict) and not _first_int(cfg, "hidden_size", "n_embd", "d_model"):
        cfg = {**text, "model_type": cfg.get("model_type")}
    hidden = _first_int(cfg, "hidden_size", "n_embd", "d_model", "n_embed")
    layers = _first_int(cfg, "num_hidden_layers", "n_layer", "n_layers", "num_layers")
    heads = _first_int(cfg, "num_attention_heads", "n_head", "n_heads", "num_heads")
    vocab = _first_int(cfg, "vocab_size", "padded_vocab_size")
    if not all((hidden, layers, heads, vocab)):
        return None
    assert hidden and layers and heads and vocab
    if cfg.get("multi_query") and not cfg.get("new_decoder_architecture"):
        kv_heads = 1
    else:
        kv_heads = _first_int(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv") or heads
    head_dim = _first_int(cfg, "head_dim", "kv_channels") or hidden // heads
    if model_type == "mpt":
        ratio = cfg.get("expansion_ratio", 4)
        ok = isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and 0 < ratio < 1e6  # NaN fails too
        ff = int(hidden * ratio) if ok else 4 * hidden
    else:
        ff = _first_int(cfg, "intermediate_size", "n_inner", "ffn_hidden_size", "ffn_dim") or 4 * hidden
    if model_type == "qwen":  # Qwen v1 states the sum of both MLP halves
        ff //= 2
    experts = _first_int(cfg, "num_local_experts", "num_experts", "n_routed_experts") or 1
    moe_ff = _first_int(cfg, "moe_intermediate_size") if experts > 1 else None
    attn = hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden
    matrices = 2 if model_type in UNGATED_MLP else 3
    mlp = matrices * hidden * (moe_ff or ff) * experts + (hidden * experts if experts > 1 else 0)
    shared = _first_int(cfg, "n_shared_experts") or 0
    mlp += shared * matrices * hidden * (moe_ff or ff)
    per_layer = attn + mlp + 2 * hidden
    tied = cfg.get("tie_word_embeddings")
    if not isinstance(tied, bool):
        tied = model_type in DEFAULT_TIED_EMBEDDINGS
    total = layers * per_layer + vocab * hidden * (1 if tied else 2) + hidden
    if model_type in LEARNED_POSITIONS:
        total += (_first_int(cfg, "n_positions", "max_position_embeddings") or 0) * hidden
    return total
