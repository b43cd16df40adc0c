"""Memory per configuration and the context a deployment can hold: the
arithmetic of report-contract.md ("Memory and the verdict at a glance").

Pure functions of config.json and the serving bytes; the figures they use
(GPUs per configuration, 80 GB, the 0.9 share, the 2 GiB allowance, the
config keys) are data in `cfm.catalog`. The deployment form and API call
these too, so a page and the report never disagree.
"""
from __future__ import annotations

from typing import Any

from cfm import catalog as rules

#: a size from a hostile config.json past this is no size (products must stay printable integers)
_MAX_INT = 2**63


def _int(cfg: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < _MAX_INT:
            return value
    return None


def context_length(cfg: dict[str, Any] | None) -> int | None:
    """The model's maximum sequence length: the first of the contract's keys
    that holds a positive integer, or None."""
    return _int(cfg, rules.CONTEXT_LENGTH_KEYS) if isinstance(cfg, dict) else None


def kv_cache_bytes_per_token(cfg: dict[str, Any] | None, model_type: str | None = None) -> int | None:
    """2 (keys and values) x layers x key/value heads x head size x 2 bytes,
    or None when config.json lacks what the formula needs."""
    if not isinstance(cfg, dict):
        return None
    mt = rules.normalize_model_type(model_type if isinstance(model_type, str) else str(cfg.get("model_type", "")))
    if mt in rules.ENCODER_DECODER_MODEL_TYPES:
        layers = _int(cfg, rules.KV_DECODER_LAYER_KEYS)
    else:
        layers = _int(cfg, rules.KV_LAYER_KEYS)
    heads = _int(cfg, rules.ATTENTION_HEAD_KEYS)
    kv_heads = _int(cfg, rules.KV_HEAD_KEYS)
    if kv_heads is None:
        kv_heads = 1 if cfg.get("multi_query") is True else heads
    head_size = _int(cfg, rules.HEAD_SIZE_KEYS)
    if head_size is None:
        hidden = _int(cfg, rules.HIDDEN_SIZE_KEYS)
        head_size = hidden // heads if hidden and heads else None
    if not (layers and kv_heads and head_size):
        return None
    return rules.KV_CACHE_TENSORS * layers * kv_heads * head_size * rules.KV_CACHE_VALUE_BYTES


def configuration_memory(key: str, serving_bytes: int, per_token: int | None) -> dict[str, Any]:
    """One configuration's entry of `memory.configurations`."""
    gpus = rules.CONFIGURATION_GPUS.get(key, 0)
    free = gpus * rules.GPU_USABLE_BYTES - serving_bytes - gpus * rules.RUNTIME_ALLOWANCE_BYTES
    fits = free > 0
    tokens = None if per_token is None else (free // per_token if fits else 0)
    return {"gpus": gpus, "gpu_memory_bytes": gpus * rules.GPU_MEMORY_BYTES, "fits": fits, "free_bytes": free,
            "kv_cache_tokens": tokens}


def memory(cfg: dict[str, Any] | None, *, model_type: str | None, family: str, serving_bytes: int | None,
           configurations: tuple[str, ...], estimated: bool = False) -> dict[str, Any] | None:
    """The report's `memory`: None for time-series models and when the
    weights' serving size is unknown; otherwise the KV cache's bytes per token
    (None when config.json lacks the fields) and each configuration's figures.
    `estimated`: the weights' bytes are the sizing estimate (parameters x 2, no
    safetensors headers), as the size check says; `weights_estimated` tells a reader."""
    if family != "general" or serving_bytes is None or not isinstance(cfg, dict):
        return None
    per_token = kv_cache_bytes_per_token(cfg, model_type)
    confs = [c for c in rules.CONFIGURATION_ORDER if c in configurations and rules.CONFIGURATION_GPUS.get(c)]
    return {"kv_cache_bytes_per_token": per_token,
            "configurations": {c: configuration_memory(c, serving_bytes, per_token) for c in confs},
            "weights_estimated": estimated}


def default_sequence_length(context: int | None) -> int:
    """max_sequence_length when a deployment leaves it out: min(2048, context_length)."""
    return min(rules.DEFAULT_SEQUENCE_LENGTH, context) if context else rules.DEFAULT_SEQUENCE_LENGTH


def kv_cache_tokens(report: dict[str, Any] | None, configuration: str | None) -> int | None:
    """A stored report's KV-cache tokens for a configuration, or None when unknown."""
    mem = (report or {}).get("memory")
    if not isinstance(mem, dict):
        return None
    entry = (mem.get("configurations") or {}).get(configuration or "")
    tokens = entry.get("kv_cache_tokens") if isinstance(entry, dict) else None
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None


__all__ = ["context_length", "kv_cache_bytes_per_token", "configuration_memory", "memory",
           "default_sequence_length", "kv_cache_tokens"]
