"""What the facts say about the model, computed once for every check.

`derive(facts, options)` turns the files read (cfm/inspection/facts.py) into
the model's description: its type and family, the platform's architecture
entry, the weights' totals (parameters, bytes, dtypes), the software specs,
the sizing (the configuration and the bytes it was judged on) and the
memory. The checks (cfm/inspection/checks/) and the report read these values;
none of them computes one again, so no check depends on another having run.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cfm import catalog as rules

from . import weightfiles
from .estimate import estimate_parameters
from .facts import Facts
from .memory import context_length, memory
from .timeseries import TsSizing, parse_payload, size_time_series

#: how the platform knows the architecture: certified; not certified but vLLM serves it and config.json
#: loads; vLLM knows the class but the config does not load; unknown
ArchitectureSupport = Literal["certified", "vllm", "mismatch", "unknown"]


@dataclass(frozen=True)
class Sizing:
    """How the model was sized for a configuration (the size check words it)."""
    #: fit (a configuration holds it), too_large, time_series (the time-series table), or a skip:
    #: skip_config, skip_unsupported, skip_malformed, skip_no_sizes
    outcome: str
    configuration: str | None = None
    #: the serving bytes judged on (the headers' or the estimate's), None when not sized from bytes
    serving: int | None = None
    #: whether `serving` comes from the headers rather than the estimate
    exact: bool = False
    time_series: TsSizing | None = None


@dataclass(frozen=True)
class Derived:
    model_type: str | None = None
    architectures: list[str] = field(default_factory=list)
    arch: rules.Architecture | None = None
    family: str = "general"
    architecture_support: ArchitectureSupport = "unknown"
    quantization: str | None = None
    #: the tensors' counts by dtype and the bytes behind each (only from headers that parsed)
    dtypes: dict[str, int] = field(default_factory=dict)
    dtype_bytes: dict[str, int] = field(default_factory=dict)
    dtype_first_file: dict[str, str] = field(default_factory=dict)
    parameters: int | None = None
    parameters_exact: bool = False
    weight_bytes: int | None = None
    serving_bytes: int | None = None
    software_specs: list[str] = field(default_factory=list)
    recommended_software_spec: str | None = None
    context_length: int | None = None
    sizing: Sizing = Sizing("skip_config")
    memory: dict[str, Any] | None = None
    #: the weight files' sizes as listed (beyond the contract): a size for a `.bin`-only model, whose
    #: pickles are never opened; None when the index names shards that are not there
    files_bytes: int | None = None
    files_bytes_by_format: dict[str, int] = field(default_factory=dict)


def derive(facts: Facts, *, concurrent_users: int | None, payload: str | None) -> Derived:
    cfg = facts.config
    model_type: str | None = None
    architectures: list[str] = []
    arch = None
    quantization = None
    if cfg is not None:
        model_type = rules.normalize_model_type(cfg["model_type"])
        archs = cfg.get("architectures")
        architectures = [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []
        arch = rules.architecture_for(cfg["model_type"])
        quant = cfg.get("quantization_config")
        if isinstance(quant, dict):
            method = quant.get("quant_method")
            quantization = method.strip().lower() if isinstance(method, str) and method.strip() else None
    family = arch.family if arch else "general"
    dtypes, dtype_bytes, first_file = _dtypes(facts)
    weights = _count_parameters(facts, quantization)
    parameters, exact, weight_bytes, serving_bytes = weights or (None, False, None, None)
    files_bytes, by_format = _files_bytes(facts)
    base = Derived(files_bytes=files_bytes, files_bytes_by_format=by_format,
                   model_type=model_type, architectures=architectures, arch=arch, family=family,
                   architecture_support=_architecture_support(cfg, arch, architectures),
                   quantization=quantization, dtypes=dtypes, dtype_bytes=dtype_bytes, dtype_first_file=first_file,
                   parameters=parameters, parameters_exact=exact, weight_bytes=weight_bytes,
                   serving_bytes=serving_bytes)
    if cfg is None:  # nothing to size or serve: the checks that need config.json skip
        return base
    if arch:
        specs = list(arch.software_specs)
        confs = arch.configurations
    elif base.architecture_support == "vllm":
        specs = [rules.SPEC_VLLM]
        confs = rules.UNCERTIFIED_CONFIGURATIONS
    else:
        specs, confs = [], ()
    preferred = list(rules.SOFTWARE_SPECS)
    if parameters is None:
        estimate = estimate_parameters(cfg) if family == "general" else None
        if estimate is not None:
            parameters, exact = estimate, False
    if family == "time_series":
        try:
            parsed = parse_payload(payload)
        except ValueError:
            parsed = None  # callers validate; a page may pass what a user typed
        result = size_time_series(concurrent_users, parsed)
        sizing = Sizing("time_series", configuration=result.configuration, time_series=result)
    elif not confs:
        sizing = Sizing("skip_unsupported")
    else:
        sizing = _size_general(facts, confs, serving_bytes, parameters)
    sized_on = sizing.serving if sizing.serving is not None else serving_bytes
    return replace(
        base, parameters=parameters, parameters_exact=exact,
        software_specs=sorted(specs, key=lambda s: (s not in (rules.SPEC_TGI, rules.SPEC_VLLM), s)),
        recommended_software_spec=min(specs, key=preferred.index) if specs else None,
        context_length=context_length(cfg), sizing=sizing,
        memory=memory(cfg, model_type=model_type, family=family, serving_bytes=sized_on,
                      configurations=rules.allowed_configurations(model_type, family),
                      estimated=serving_bytes is None))


def _files_bytes(facts: Facts) -> tuple[int | None, dict[str, int]]:
    """The shards the model is served from (or, without safetensors, its
    PyTorch files) by their listed sizes, and every weight file's bytes by format."""
    root_files = {p: s for p, s in facts.files.items() if "/" not in p}
    by_format = weightfiles.bytes_by_format(root_files)
    if facts.safetensors:
        return (None if facts.incomplete else sum(s.size for s in facts.shards)), by_format
    pickles = [s for p, s in root_files.items() if weightfiles.is_weight_pickle(p)]
    return (sum(pickles) if pickles else None), by_format


def _architecture_support(cfg: dict[str, Any] | None, arch: rules.Architecture | None,
                          architectures: list[str]) -> ArchitectureSupport:
    if arch:
        return "certified"
    first = architectures[0] if architectures else ""
    if cfg is not None and first in rules.vllm_architectures():
        return "vllm" if rules.config_is_loadable(cfg) else "mismatch"
    return "unknown"


def _size_general(facts: Facts, confs: tuple[str, ...], serving_bytes: int | None,
                  parameters: int | None) -> Sizing:
    exact = serving_bytes is not None
    if serving_bytes is not None:
        serving = serving_bytes
    elif any(s.problem for s in facts.shards):
        return Sizing("skip_malformed")
    elif parameters is not None:
        serving = parameters * 2
    else:
        return Sizing("skip_no_sizes")
    fit = rules.configuration_for_serving_bytes(serving, confs)
    return Sizing("fit" if fit else "too_large", configuration=fit, serving=serving, exact=exact)


def _dtypes(facts: Facts) -> tuple[dict[str, int], dict[str, int], dict[str, str]]:
    """Tensors counted by dtype, the bytes behind each as stored, and the first file holding each."""
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    first_file: dict[str, str] = {}
    for shard in facts.shards:
        if not shard.info:
            continue
        tensors = shard.info.tensors.values()
        seen = Counter(t.dtype for t in tensors)  # counted in C; most shards hold one or two dtypes
        counts.update(seen)
        if len(seen) == 1:
            sizes[next(iter(seen))] += sum(t.nbytes for t in tensors)
        else:
            for t in tensors:
                sizes[t.dtype] += t.nbytes
        for dtype in seen:
            first_file.setdefault(dtype, shard.path)
    dtypes = dict(sorted(counts.items()))
    return dtypes, {k: sizes[k] for k in dtypes}, first_file


def _count_parameters(facts: Facts, quantization: str | None) -> tuple[int, bool, int, int] | None:
    """Parameters, exactness, weight bytes and serving bytes from the headers;
    None unless every shard of the model was read and parsed."""
    parsed = [s for s in facts.shards if s.info]
    if not parsed or not all(s.info for s in facts.shards) or facts.incomplete:
        return None
    packing = rules.PACKED_QUANT_METHODS.get(quantization or "")
    bits = _quant_bits(facts.config) if packing else None
    params = weight = serving = 0
    for shard in parsed:
        assert shard.info
        for name, t in shard.info.tensors.items():
            weight += t.nbytes
            serving += t.numel * 2 if t.dtype in rules.FLOAT_DOWNCAST_DTYPES else t.nbytes
            if packing and bits:
                if name.endswith(packing["companions"]):
                    continue
                if name.endswith(packing["packed"]) and t.dtype in ("I32", "U32"):
                    params += t.numel * 32 // bits
                    continue
            params += t.numel
    return params, True, weight, serving


def _quant_bits(cfg: dict | None) -> int | None:
    q = (cfg or {}).get("quantization_config") or {}
    for key in ("bits", "w_bit", "wbits"):
        v = q.get(key) if isinstance(q, dict) else None
        if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 32:
            return v
    return 4
