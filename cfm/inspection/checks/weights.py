"""Checks on the weights: their format, the safetensors headers, the index, the metadata and the dtypes."""
from __future__ import annotations

from cfm import catalog as rules

from ..derived import Derived
from ..facts import Facts
from ..messages import HEADER_REASONS, render
from .base import Outcome, json_detail, names, outcome


def weights_format(facts: Facts, model: Derived) -> Outcome:
    shards = facts.shards
    if facts.safetensors:
        if shards and all(s.info is not None and not s.info.tensors for s in shards):
            # Valid headers that list no tensor at all: there is nothing to serve.
            return outcome("weights_format", "fail", "weights_format.fail_empty", files=names([s.path for s in shards]))
        return outcome("weights_format", "pass", "weights_format.pass", count=len(shards) or 1)
    root_files = [p for p in facts.files if "/" not in p]
    pytorch = sorted(p for p in root_files if p.lower().endswith(rules.PYTORCH_WEIGHT_SUFFIXES)
                     and not p.lower().startswith(rules.NON_WEIGHT_PICKLES))
    if pytorch:
        return outcome("weights_format", "warn", "weights_format.warn", prepare="convert_weights_to_safetensors",
                       files=names(pytorch))
    unusable = sorted(p for p in root_files if p.lower().endswith(rules.UNCONVERTIBLE_WEIGHT_SUFFIXES))
    if unusable:
        return outcome("weights_format", "fail", "weights_format.fail_unusable", files=names(unusable))
    return outcome("weights_format", "fail", "weights_format.fail_none")


def safetensors_header(facts: Facts, model: Derived) -> Outcome:
    if not facts.shards:
        return outcome("safetensors_header", "skip", "safetensors_header.skip")
    bad = [s for s in facts.shards if s.problem]
    if not bad:
        return outcome("safetensors_header", "pass", "safetensors_header.pass", count=len(facts.shards),
                       tensors=sum(len(s.info.tensors) for s in facts.shards if s.info))
    first = bad[0].problem
    assert first
    key = "safetensors_header.lfs_pointer" if first.key == "header_lfs_pointer" else "safetensors_header.fail"
    return outcome("safetensors_header", "fail", key, file=bad[0].path,
                   reason=render(HEADER_REASONS[first.key], first.params), reason_key=first.key,
                   reason_params=first.params,
                   problems=[{"file": s.path, "reason": render(HEADER_REASONS[s.problem.key], s.problem.params)}
                             for s in bad if s.problem][:50])


def safetensors_index(facts: Facts, model: Derived) -> Outcome:
    index_name, weight_map = facts.index_name, facts.weight_map
    if not facts.shards and not index_name:
        return outcome("safetensors_index", "skip", "safetensors_index.skip")
    if facts.index_problem:
        exc = facts.index_problem
        return outcome("safetensors_index", "fail", "safetensors_index.unreadable" if exc.reason == "unreadable"
                       else "safetensors_index.invalid", index=index_name, detail=json_detail(exc, facts.limits))
    # A tensor in two shards is wrong with or without an index.
    seen: dict[str, str] = {}
    for shard in facts.shards:
        if not shard.info:
            continue
        for name in shard.info.tensors:
            if name in seen:
                return outcome("safetensors_index", "fail", "safetensors_index.duplicate", tensor=name[:120],
                               first=seen[name], second=shard.path)
            seen[name] = shard.path
    if weight_map is None:
        if len(facts.safetensors) > 1:
            return outcome("safetensors_index", "fail", "safetensors_index.no_index", count=len(facts.safetensors),
                           files=names(list(facts.safetensors)))
        return outcome("safetensors_index", "pass", "safetensors_index.pass_single")
    for shard_name in sorted(set(weight_map.values())):
        # Shards live beside the index: a name with a folder in it (or ../) is not one of them.
        if "/" in shard_name or "\\" in shard_name or shard_name not in facts.files:
            return outcome("safetensors_index", "fail", "safetensors_index.missing_shard", index=index_name,
                           shard=shard_name)
    by_path = {s.path: s for s in facts.shards}  # a hostile index may name a million tensors
    for tensor, shard_name in weight_map.items():
        holder = seen.get(tensor)
        named = by_path.get(shard_name)
        if named and named.info and holder != shard_name:
            return outcome("safetensors_index", "fail", "safetensors_index.missing_tensor", index=index_name,
                           tensor=tensor[:120], shard=shard_name)
    for tensor, holder in seen.items():
        if tensor not in weight_map:
            return outcome("safetensors_index", "fail", "safetensors_index.extra_tensor", index=index_name,
                           tensor=tensor[:120], shard=holder)
    return outcome("safetensors_index", "pass", "safetensors_index.pass", index=index_name,
                   count=len(facts.shards), tensors=len(weight_map))


def safetensors_metadata(facts: Facts, model: Derived) -> Outcome:
    parsed = [s for s in facts.shards if s.info]
    if not parsed:
        return outcome("safetensors_metadata", "skip", "safetensors_metadata.skip")
    for shard in parsed:
        assert shard.info
        fmt = (shard.info.metadata or {}).get("format")
        if fmt is None:
            return outcome("safetensors_metadata", "fail", "safetensors_metadata.missing",
                           prepare="fix_safetensors_metadata", file=shard.path)
        if fmt != "pt":
            return outcome("safetensors_metadata", "fail", "safetensors_metadata.other",
                           prepare="fix_safetensors_metadata", file=shard.path, format=str(fmt)[:40])
    return outcome("safetensors_metadata", "pass", "safetensors_metadata.pass")


def dtypes(facts: Facts, model: Derived) -> Outcome:
    if not any(s.info for s in facts.shards):
        return outcome("dtypes", "skip", "dtypes.skip")
    counts = model.dtypes
    listing = ", ".join(f"{k} × {v}" for k, v in counts.items())
    bad = sorted(d for d in counts if d not in rules.DTYPES_PASS and d not in rules.DTYPES_WARN)
    fp8 = sorted(d for d in counts if d in rules.DTYPES_WARN)
    if bad:
        return outcome("dtypes", "fail", "dtypes.fail", dtypes=", ".join(bad), file=model.dtype_first_file[bad[0]])
    if fp8:
        return outcome("dtypes", "warn", "dtypes.warn", dtypes=", ".join(fp8))
    return outcome("dtypes", "pass", "dtypes.pass", dtypes=listing or "none")
