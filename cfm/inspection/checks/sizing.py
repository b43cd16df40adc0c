"""Checks on the model's size: the configuration it fits, the software specs that serve it, and whether
the configuration's KV cache holds a sequence of the default length. They word `Derived.sizing` and
`Derived.memory`, computed once in cfm/inspection/derived.py."""
from __future__ import annotations

from typing import Any

from cfm import catalog as rules

from ..derived import Derived
from ..facts import Facts
from ..memory import default_sequence_length
from .base import Outcome, outcome

_SKIP_REASONS = {
    "skip_config": "config.json is missing or invalid",
    "skip_unsupported": "the architecture is not supported",
    "skip_malformed": "a safetensors header is malformed",
    "skip_no_sizes": "there are no safetensors headers and config.json lacks the sizes to estimate from",
}


def size(facts: Facts, model: Derived) -> Outcome:
    sizing = model.sizing
    if sizing.time_series is not None:
        result = sizing.time_series
        return outcome("size", result.status, result.key, **result.params)
    if sizing.outcome in _SKIP_REASONS:
        return outcome("size", "skip", "size.skip", reason=_SKIP_REASONS[sizing.outcome])
    serving = sizing.serving
    assert serving is not None
    params16 = serving // 2
    params: dict[str, Any] = {"params": _human(params16), "params_16bit": params16,
                              "serving_gb": round(serving / 1e9, 1), "model_type": model.model_type}
    if sizing.configuration:
        label = rules.CONFIGURATIONS[sizing.configuration].label
        key = "size.pass" if sizing.exact else "size.pass_estimate"
        return outcome("size", "pass", key, configuration=label, **params)
    no_tp = bool(model.arch and not model.arch.tensor_parallel)
    bound = rules.CONFIGURATIONS["small" if no_tp else "large"].max_parameters or 0
    params["params"] = _human_beyond(params16, bound)
    key = "size.fail_no_tp" if no_tp else "size.fail_too_large"
    return outcome("size", "fail", key if sizing.exact else f"{key}_estimate", **params)


def software_spec(facts: Facts, model: Derived) -> Outcome:
    if facts.config is None:
        return outcome("software_spec", "skip", "software_spec.skip")
    if model.software_specs:
        return outcome("software_spec", "pass", "software_spec.pass", specs=", ".join(model.software_specs),
                       model_type=model.model_type, recommended=model.recommended_software_spec)
    return outcome("software_spec", "fail", "software_spec.fail", model_type=model.model_type)


def context(facts: Facts, model: Derived) -> Outcome:
    """Whether the recommended configuration holds one sequence of the default
    length (min(context_length, 2048)) in its KV cache (report-contract: context)."""
    mem = model.memory
    conf = model.sizing.configuration
    if facts.config is None:
        return outcome("context", "skip", "context.skip_config")
    if model.family == "time_series":
        return outcome("context", "skip", "context.skip_time_series")
    if mem is None or conf not in mem["configurations"]:
        return outcome("context", "skip", "context.skip_size")
    per_token = mem["kv_cache_bytes_per_token"]
    if per_token is None:
        return outcome("context", "skip", "context.skip_fields")
    assert conf is not None
    tokens = mem["configurations"][conf]["kv_cache_tokens"]
    length = default_sequence_length(model.context_length)
    params: dict[str, Any] = {"configuration": rules.CONFIGURATIONS[conf].label, "tokens": tokens,
                              "per_token": per_token, "length": length}
    if tokens >= length:
        return outcome("context", "pass", "context.pass", sequences=tokens // length, **params)
    allowed = rules.allowed_configurations(model.model_type, model.family)
    up = rules.next_configuration(conf, allowed)
    minimum = next(p.minimum for p in rules.DEPLOYMENT_PARAMETERS if p.name == "max_sequence_length")
    room = "" if tokens >= (minimum or 0) else "_no_room"
    if up is None or up not in mem["configurations"]:
        return outcome("context", "warn", f"context.warn{room}_top", largest=tokens, minimum=minimum, **params)
    return outcome("context", "warn", f"context.warn{room}", largest=tokens, minimum=minimum,
                   next_configuration=rules.CONFIGURATIONS[up].label,
                   next_tokens=mem["configurations"][up]["kv_cache_tokens"], **params)


def _human(n: int) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def _human_beyond(n: int, bound: int) -> str:
    """`n` as _human writes it, or exactly (26,000,000,001) where rounding
    would show the bound it exceeds."""
    shown = _human(n)
    return shown if _human(bound) != shown else f"{n:,}"
