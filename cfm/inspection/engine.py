"""The inspection engine: what the platform will make of a model.

`inspect(spec)` opens a source and calls `inspect_source`, which reads
config.json, the tokenizer files, tsfm_config.json, the safetensors index and
each safetensors header (never the weights), then applies the rules of
`cfm.catalog` and returns a Report. The command line, the Celery task and
the views all call these two functions.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from cfm import catalog as rules

from .estimate import estimate_parameters
from .jsonsafe import JsonProblem, loads_bounded, no_gc
from .limits import InspectLimits
from .memory import context_length, default_sequence_length, memory
from .messages import HEADER_REASONS, render
from .report import Check, Report
from .safetensors_header import HeaderInfo, HeaderProblem, header_length, parse_header
from .sources import FileTooLarge, Source, SourceError, open_source
from .timeseries import parse_payload, size_time_series

#: step key, done, total, bytes read so far
Progress = Callable[[str, int, int, int], None]


@dataclass
class InspectOptions:
    limits: InspectLimits = field(default_factory=InspectLimits)
    concurrent_users: int | None = None
    payload: str | None = None
    progress: Progress | None = None


def inspect(spec: str, *, options: InspectOptions | None = None, revision: str | None = None,
            token: str | None = None, hub_timeout: float | None = None, hub_attempts: int | None = None) -> Report:
    """Inspect a local folder, archive or Hub repo id. Raises SourceError
    when the source cannot be read at all. `hub_timeout` and `hub_attempts`
    (per request) apply to a Hub source; None keeps the Hub client's defaults."""
    options = options or InspectOptions()
    with open_source(spec, limits=options.limits, revision=revision, token=token, hub_timeout=hub_timeout,
                     hub_attempts=hub_attempts) as source:
        return inspect_source(source, options)


# --------------------------------------------------------------------------------------------------------
@dataclass
class _Shard:
    path: str
    size: int
    info: HeaderInfo | None = None
    problem: HeaderProblem | None = None


class _Inspection:
    def __init__(self, source: Source, options: InspectOptions):
        self.source = source
        self.options = options
        self.limits = options.limits
        self.report = Report(source=source.description)
        self.checks: dict[str, Check] = {}
        self.prep: set[str] = set()
        self.files: dict[str, int] = {}
        self.config: dict[str, Any] | None = None
        self.arch: rules.Architecture | None = None
        self.shards: list[_Shard] = []
        #: the index names shards that are not there: the headers cannot give the model's size
        self.incomplete = False
        #: the bytes sizing used (serving_bytes, or the estimate's), for the memory figures
        self.sizing_bytes: int | None = None

    # -- helpers ------------------------------------------------------------------------------------------
    def progress(self, step: str, done: int = 0, total: int = 0) -> None:
        if self.options.progress:
            self.options.progress(step, done, total, self.source.bytes_read)

    def add(self, check_id: str, status: str, message_key: str, /, **params: Any) -> Check:
        # Positional-only: a template may well have a parameter called `key` (tsfm_config.bad_name).
        # Values come from the model's files: a 3 MB model_type must not be repeated in every message.
        params = {k: (v[:_MAX_PARAM_CHARS] + "…" if isinstance(v, str) and len(v) > _MAX_PARAM_CHARS else v)
                  for k, v in params.items()}
        check = Check(check_id, status, message_key, params)
        self.checks[check_id] = check
        return check

    def root(self, name: str) -> bool:
        return name in self.files

    def read_json(self, path: str, cap: int) -> Any:
        """Parsed JSON, or raise JsonProblem (too_large, not_utf8, too_deep, not_json)."""
        size = self.files[path]
        if size > cap:
            raise JsonProblem("too_large", str(size))
        try:
            raw = self.source.read_file(path, cap)
        except FileTooLarge as exc:
            raise JsonProblem("too_large", str(exc.size)) from None
        except OSError as exc:  # permissions, a file that vanished, an I/O error: this file's check fails
            raise JsonProblem("unreadable", exc.strerror or type(exc).__name__) from None
        # No BOM: transformers and tokenizers read these files with json.loads, which refuses one.
        return loads_bounded(raw, max_bytes=cap, max_depth=self.limits.max_json_depth, strip_bom=False)

    def json_detail(self, exc: JsonProblem) -> str:
        """A JsonProblem's detail as words for a message."""
        if exc.reason == "too_deep":
            return f"nested more than {self.limits.max_json_depth} levels deep"
        if exc.reason == "not_utf8":
            return f"not UTF-8 text at {exc.detail}" if exc.detail else "not UTF-8 text"
        return exc.detail or exc.reason

    # -- the run -------------------------------------------------------------------------------------------
    def run(self) -> Report:
        self.progress("listing_files")
        self.files = self.source.list_files()
        self.read_ahead()
        self.progress("reading_config")
        self.read_config()
        self.weights()
        self.progress("checking")
        self.tokenizer()
        self.quantization()
        self.tsfm_config()
        self.size_and_specs()
        self.known_issues()
        self.context()
        r = self.report
        r.checks = [self.checks[c] for c in rules.CHECK_IDS]
        r.preparation = [step for step in rules.PREPARATION_STEPS if step in self.prep]
        r.extra["limitations"] = list(rules.LIMITATIONS)
        r.extra["files"] = {"count": len(self.files), "bytes_read": self.source.bytes_read,
                            "requests": self.source.requests}
        return r

    def read_ahead(self) -> None:
        """Tell the source what the checks below will read, so that a remote one
        fetches it at once rather than a round trip after another. Without an
        index the root's safetensors are the shards; with one, their headers are
        sized from it (the source learns that when the index is read)."""
        root = [p for p in self.files if "/" not in p]
        has_index = any(p.endswith(".safetensors.index.json") for p in root)
        headers = [] if has_index else sorted(p for p in root if p.endswith(".safetensors"))
        # Only what the checks will read: a file over its cap is refused by its listed size, unread.
        caps = {"config.json": self.limits.max_config_bytes}
        files = [p for p in _READ_AHEAD if p in self.files
                 and self.files[p] <= caps.get(p, self.limits.max_small_file_bytes)]
        self.source.prefetch(files=files, headers=headers)

    # -- config ---------------------------------------------------------------------------------------------
    def read_config(self) -> None:
        r = self.report
        if not self.root("config.json"):
            kind = self.source.not_files().get("config.json")
            if kind:
                self.add("config_present", "fail", "config_present.not_file", file="config.json", kind=kind)
            else:
                self.add("config_present", "fail", "config_present.fail")
            self.add("config_valid", "skip", "config_valid.skip")
            return
        self.add("config_present", "pass", "config_present.pass")
        cap = self.limits.max_config_bytes
        try:
            cfg = self.read_json("config.json", cap)
        except JsonProblem as exc:
            if exc.reason == "unreadable":
                self.add("config_valid", "fail", "config_valid.unreadable", detail=exc.detail)
                return
            shown_cap = self.limits.max_json_depth if exc.reason == "too_deep" else cap
            self.add("config_valid", "fail", f"config_valid.{exc.reason}", detail=exc.detail,
                     size=self.files["config.json"], cap=shown_cap)
            return
        if not isinstance(cfg, dict):
            self.add("config_valid", "fail", "config_valid.not_object", type=_json_type(cfg))
            return
        model_type = cfg.get("model_type")
        if not isinstance(model_type, str) or not model_type.strip():
            self.add("config_valid", "fail", "config_valid.no_model_type")
            return
        self.config = cfg
        r.model_type = rules.normalize_model_type(model_type)
        archs = cfg.get("architectures")
        r.architectures = [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []
        self.add("config_valid", "pass", "config_valid.pass", model_type=model_type)
        self.arch = rules.architecture_for(model_type)
        if self.arch:
            r.family = self.arch.family
            r.certified = True
            r.tensor_parallel = self.arch.tensor_parallel
        quant = cfg.get("quantization_config")
        if not isinstance(quant, dict):
            quant = self.legacy_quant_config()
            if quant is not None:  # the engine reads it where the runtime does: as the config's own
                self.config = {**cfg, "quantization_config": quant}
        if isinstance(quant, dict):
            method = quant.get("quant_method")
            r.quantization = method.strip().lower() if isinstance(method, str) and method.strip() else None

    def legacy_quant_config(self) -> dict | None:
        """AutoGPTQ's quantize_config.json or AutoAWQ's quant_config.json,
        which older quantized models carry instead of a quantization_config
        in config.json, and which the runtime (vLLM) reads the same way.
        One that cannot be read is ignored: the quantization check then says
        the weights are not quantized."""
        for name, method in (("quantize_config.json", "gptq"), ("quant_config.json", "awq")):
            if not self.root(name):
                continue
            try:
                doc = self.read_json(name, self.limits.max_config_bytes)
            except JsonProblem:
                return None
            if not isinstance(doc, dict):
                return None
            found = doc.get("quant_method")
            return {**doc, "quant_method": found if isinstance(found, str) and found.strip() else method}
        return None

    # -- weights --------------------------------------------------------------------------------------------
    def weights(self) -> None:
        root_files = {p: s for p, s in self.files.items() if "/" not in p}
        safetensors = sorted(p for p in root_files if p.endswith(".safetensors"))
        index_name = next((p for p in ("model.safetensors.index.json",) if p in root_files), None) or next(
            (p for p in sorted(root_files) if p.endswith(".safetensors.index.json")), None)
        weight_map: dict[str, str] | None = None
        index_problem: tuple[str, dict] | None = None
        if index_name:
            try:
                index = self.read_json(index_name, self.limits.max_small_file_bytes)
                wm = index.get("weight_map") if isinstance(index, dict) else None
                if not isinstance(wm, dict) or not all(isinstance(v, str) for v in wm.values()):
                    raise JsonProblem("not_json", 'no "weight_map" object of tensor name to shard file')
                if not wm:
                    raise JsonProblem("not_json", 'its "weight_map" names no tensors')
                odd = next((v for v in wm.values() if not v.endswith(".safetensors")), None)
                if odd is not None:
                    raise JsonProblem("not_json", f'its "weight_map" names {odd[:120]}, not a .safetensors file')
                weight_map = wm
            except JsonProblem as exc:
                index_problem = ("safetensors_index.unreadable" if exc.reason == "unreadable" else
                                 "safetensors_index.invalid", {"index": index_name, "detail": self.json_detail(exc)})
        shard_names = safetensors
        if weight_map is not None:
            named = sorted(set(weight_map.values()))
            # Files beside the index that it does not name (e.g. a consolidated copy) are not the model.
            shard_names = [n for n in named if n in root_files]
            self.incomplete = len(shard_names) < len(named)
        self.shards = [_Shard(p, root_files[p]) for p in shard_names]
        self.read_headers()
        self.weights_format(root_files, bool(safetensors))
        self.header_checks()
        self.index_check(index_name, weight_map, index_problem, safetensors)
        self.metadata_and_dtypes()

    def read_headers(self) -> None:
        total = len(self.shards)
        if not total:
            return
        self.progress("reading_headers", 0, total)
        done = 0

        lock = threading.Lock()
        tensors_so_far = 0

        def one(shard: _Shard) -> _Shard:
            nonlocal tensors_so_far
            try:
                info = self.read_header(shard)
                # max_tensors bounds the whole model, not each shard: many shards of a
                # million tensors each would otherwise add up without limit.
                with lock:
                    tensors_so_far += len(info.tensors)
                    count = tensors_so_far
                if count > self.limits.max_tensors:
                    raise HeaderProblem("header_too_many_tensors", count=count, cap=self.limits.max_tensors)
                shard.info = info
            except HeaderProblem as exc:
                shard.problem = exc
            except FileTooLarge as exc:
                shard.problem = HeaderProblem("header_over_cap", length=exc.size, cap=exc.cap)
            except OSError as exc:
                shard.problem = HeaderProblem("header_unreadable", detail=exc.strerror or str(exc))
            return shard

        workers = max(1, min(self.source.parallelism, total))
        if workers == 1:
            for shard in self.shards:
                one(shard)
                done += 1
                self.progress("reading_headers", done, total)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cfm-header") as pool:
                for _ in pool.map(one, self.shards):
                    done += 1
                    self.progress("reading_headers", done, total)

    def read_header(self, shard: _Shard) -> HeaderInfo:
        want = min(shard.size, max(8, self.source.header_prefetch))
        n, raw = self.source.read_header(
            shard.path, want, lambda prefix: header_length(prefix, shard.path, shard.size, self.limits))
        if len(raw) != n:
            raise HeaderProblem("header_length_past_file", length=n, size=shard.size)
        return parse_header(shard.path, raw, shard.size, self.limits)

    def weights_format(self, root_files: dict[str, int], has_safetensors: bool) -> None:
        if has_safetensors:
            if self.shards and all(s.info is not None and not s.info.tensors for s in self.shards):
                # Valid headers that list no tensor at all: there is nothing to serve.
                self.add("weights_format", "fail", "weights_format.fail_empty",
                         files=_names([s.path for s in self.shards]))
                return
            self.add("weights_format", "pass", "weights_format.pass", count=len(self.shards) or 1)
            return
        pytorch = sorted(p for p in root_files if p.lower().endswith(rules.PYTORCH_WEIGHT_SUFFIXES)
                         and not p.lower().startswith(rules.NON_WEIGHT_PICKLES))
        if pytorch:
            self.add("weights_format", "warn", "weights_format.warn", files=_names(pytorch))
            self.prep.add("convert_weights_to_safetensors")
            return
        unusable = sorted(p for p in root_files if p.lower().endswith(rules.UNCONVERTIBLE_WEIGHT_SUFFIXES))
        if unusable:
            self.add("weights_format", "fail", "weights_format.fail_unusable", files=_names(unusable))
        else:
            self.add("weights_format", "fail", "weights_format.fail_none")

    def header_checks(self) -> None:
        if not self.shards:
            self.add("safetensors_header", "skip", "safetensors_header.skip")
            return
        bad = [s for s in self.shards if s.problem]
        if not bad:
            self.add("safetensors_header", "pass", "safetensors_header.pass", count=len(self.shards),
                     tensors=sum(len(s.info.tensors) for s in self.shards if s.info))
            return
        first = bad[0]
        assert first.problem
        reason = render(HEADER_REASONS[first.problem.key], first.problem.params)
        key = "safetensors_header.lfs_pointer" if first.problem.key == "header_lfs_pointer" else \
            "safetensors_header.fail"
        check = self.add("safetensors_header", "fail", key, file=first.path, reason=reason,
                         reason_key=first.problem.key, reason_params=first.problem.params)
        check.params["problems"] = [
            {"file": s.path, "reason": render(HEADER_REASONS[s.problem.key], s.problem.params)}
            for s in bad if s.problem
        ][:50]

    def index_check(self, index_name, weight_map, index_problem, safetensors) -> None:
        if not self.shards and not index_name:
            self.add("safetensors_index", "skip", "safetensors_index.skip")
            return
        if index_problem:
            self.add("safetensors_index", "fail", index_problem[0], **index_problem[1])
            return
        # A tensor in two shards is wrong with or without an index.
        seen: dict[str, str] = {}
        for shard in self.shards:
            if not shard.info:
                continue
            for name in shard.info.tensors:
                if name in seen:
                    self.add("safetensors_index", "fail", "safetensors_index.duplicate", tensor=name[:120],
                             first=seen[name], second=shard.path)
                    return
                seen[name] = shard.path
        if weight_map is None:
            if len(safetensors) > 1:
                self.add("safetensors_index", "fail", "safetensors_index.no_index", count=len(safetensors),
                         files=_names(safetensors))
            else:
                self.add("safetensors_index", "pass", "safetensors_index.pass_single")
            return
        for shard_name in sorted(set(weight_map.values())):
            # Shards live beside the index: a name with a folder in it (or ../) is not one of them.
            if "/" in shard_name or "\\" in shard_name or shard_name not in self.files:
                self.add("safetensors_index", "fail", "safetensors_index.missing_shard", index=index_name,
                         shard=shard_name)
                return
        by_path = {s.path: s for s in self.shards}  # a hostile index may name a million tensors
        for tensor, shard_name in weight_map.items():
            holder = seen.get(tensor)
            named = by_path.get(shard_name)
            if named and named.info and holder != shard_name:
                self.add("safetensors_index", "fail", "safetensors_index.missing_tensor", index=index_name,
                         tensor=tensor[:120], shard=shard_name)
                return
        for tensor, holder in seen.items():
            if tensor not in weight_map:
                self.add("safetensors_index", "fail", "safetensors_index.extra_tensor", index=index_name,
                         tensor=tensor[:120], shard=holder)
                return
        self.add("safetensors_index", "pass", "safetensors_index.pass", index=index_name, count=len(self.shards),
                 tensors=len(weight_map))

    def metadata_and_dtypes(self) -> None:
        r = self.report
        parsed = [s for s in self.shards if s.info]
        if not parsed:
            self.add("safetensors_metadata", "skip", "safetensors_metadata.skip")
            self.add("dtypes", "skip", "dtypes.skip")
            r.extra["dtype_bytes"] = {}
            return
        metadata_check = None
        for shard in parsed:
            assert shard.info
            fmt = (shard.info.metadata or {}).get("format")
            if fmt is None:
                metadata_check = ("safetensors_metadata.missing", {"file": shard.path})
            elif fmt != "pt":
                metadata_check = ("safetensors_metadata.other", {"file": shard.path, "format": str(fmt)[:40]})
            if metadata_check:
                break
        if metadata_check:
            self.add("safetensors_metadata", "fail", metadata_check[0], **metadata_check[1])
            self.prep.add("fix_safetensors_metadata")
        else:
            self.add("safetensors_metadata", "pass", "safetensors_metadata.pass")
        counts: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        first_file: dict[str, str] = {}
        for shard in parsed:
            assert shard.info
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
        r.dtypes = dict(sorted(counts.items()))
        # Beyond the contract (which lets fields be added): the bytes behind each dtype as stored, for the
        # report page's chart; `dtypes` keeps counting tensors, as the contract says.
        r.extra["dtype_bytes"] = {k: sizes[k] for k in r.dtypes}
        listing = ", ".join(f"{k} × {v}" for k, v in r.dtypes.items())
        bad = sorted(d for d in counts if d not in rules.DTYPES_PASS and d not in rules.DTYPES_WARN)
        fp8 = sorted(d for d in counts if d in rules.DTYPES_WARN)
        if bad:
            self.add("dtypes", "fail", "dtypes.fail", dtypes=", ".join(bad), file=first_file[bad[0]])
        elif fp8:
            self.add("dtypes", "warn", "dtypes.warn", dtypes=", ".join(fp8))
        else:
            self.add("dtypes", "pass", "dtypes.pass", dtypes=listing or "none")
        if all(s.info for s in self.shards) and not self.incomplete:
            self.count_parameters(parsed)

    def count_parameters(self, parsed: list[_Shard]) -> None:
        r = self.report
        packing = rules.PACKED_QUANT_METHODS.get(r.quantization or "")
        bits = _quant_bits(self.config) if packing else None
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
        r.parameters, r.parameters_exact, r.weight_bytes, r.serving_bytes = params, True, weight, serving

    # -- tokenizer ------------------------------------------------------------------------------------------
    def tokenizer(self) -> None:
        if self.report.family == "time_series":
            self.add("tokenizer", "skip", "tokenizer.skip")
            return
        slow = [group for group in rules.SLOW_TOKENIZER_FILES if all(self.root(f) for f in group)]
        slow_names = ", ".join(" + ".join(g) for g in slow)
        if self.root("tokenizer.json"):
            try:
                tok = self.read_json("tokenizer.json", self.limits.max_small_file_bytes)
                if not isinstance(tok, dict):
                    raise JsonProblem("not_json", f"a JSON {_json_type(tok)}, not an object")
            except JsonProblem as exc:
                if exc.reason == "too_large":
                    self.add("tokenizer", "fail", "tokenizer.fail_too_large", size=self.files["tokenizer.json"],
                             cap=self.limits.max_small_file_bytes)
                elif exc.reason == "unreadable":
                    self.add("tokenizer", "fail", "tokenizer.fail_unreadable", detail=exc.detail)
                elif slow:  # Prepare regenerates it from the slow files
                    self.add("tokenizer", "fail", "tokenizer.fail_invalid_prepare", detail=self.json_detail(exc),
                             files=slow_names)
                else:
                    self.add("tokenizer", "fail", "tokenizer.fail_invalid", detail=self.json_detail(exc))
                if slow:
                    self.prep.add("generate_tokenizer_json")
                return
            self.add("tokenizer", "pass", "tokenizer.pass")
        elif slow:
            self.add("tokenizer", "warn", "tokenizer.warn", files=slow_names)
            self.prep.add("generate_tokenizer_json")
        else:
            kind = self.source.not_files().get("tokenizer.json")
            if kind:
                self.add("tokenizer", "fail", "tokenizer.not_file", file="tokenizer.json", kind=kind)
            else:
                self.add("tokenizer", "fail", "tokenizer.fail_none")

    # -- config-based checks --------------------------------------------------------------------------------
    def quantization(self) -> None:
        cfg, r = self.config, self.report
        if cfg is None:
            self.add("trust_remote_code", "skip", "trust_remote_code.skip")
            self.add("architecture", "skip", "architecture.skip")
            self.add("quantization", "skip", "quantization.skip")
            return
        self.architecture_check()
        auto_map = cfg.get("auto_map")
        if auto_map:
            classes = ", ".join(sorted(str(k) for k in auto_map)) if isinstance(auto_map, dict) else str(auto_map)
            self.add("trust_remote_code", "warn", "trust_remote_code.warn", classes=classes[:200],
                     model_type=r.model_type)
        else:
            self.add("trust_remote_code", "pass", "trust_remote_code.pass")
        method = r.quantization
        if method is None:
            if isinstance(cfg.get("quantization_config"), dict):
                self.add("quantization", "warn", "quantization.warn_unnamed")
            else:
                self.add("quantization", "pass", "quantization.pass_none")
            return
        certified = self.arch.quantization if self.arch else ()
        if method in certified:
            self.add("quantization", "pass", "quantization.pass", method=method, model_type=r.model_type)
        else:
            self.add("quantization", "warn", "quantization.warn", method=method, model_type=r.model_type,
                     certified=", ".join(certified) or "none")

    def architecture_check(self) -> None:
        r = self.report
        first_arch = r.architectures[0] if r.architectures else ""
        if self.arch:
            self.add("architecture", "pass", "architecture.pass", model_type=r.model_type)
        elif first_arch in rules.vllm_architectures() and rules.config_is_loadable(self.config or {}):
            self.add("architecture", "warn", "architecture.warn", model_type=r.model_type, architecture=first_arch,
                     spec=rules.SPEC_VLLM)
        elif first_arch in rules.vllm_architectures():
            self.add("architecture", "fail", "architecture.fail_mismatch", model_type=r.model_type,
                     architecture=first_arch)
        else:
            self.add("architecture", "fail", "architecture.fail", model_type=r.model_type,
                     architecture=first_arch or "no architectures")

    def tsfm_config(self) -> None:
        if self.config is None:
            self.add("tsfm_config", "skip", "tsfm_config.skip_config")
            return
        if self.report.family != "time_series":
            self.add("tsfm_config", "skip", "tsfm_config.skip")
            return
        if not self.root("tsfm_config.json"):
            self.add("tsfm_config", "fail", "tsfm_config.missing")
            self.prep.add("add_tsfm_config")
            return
        try:
            doc = self.read_json("tsfm_config.json", self.limits.max_small_file_bytes)
        except JsonProblem as exc:
            self.add("tsfm_config", "fail", "tsfm_config.unreadable" if exc.reason == "unreadable" else
                     "tsfm_config.invalid", detail=self.json_detail(exc))
            return
        if not isinstance(doc, dict):
            self.add("tsfm_config", "fail", "tsfm_config.not_object", type=_json_type(doc))
            return
        handler = None
        for (mod_key, cls_key), allowed in rules.TSFM_HANDLERS.items():
            if mod_key in doc or cls_key in doc:
                pair = (doc.get(mod_key), doc.get(cls_key))
                # Strings compared to an allow-list, never imported; a list or object is simply
                # not an allowed name (and must not reach a set lookup: it is unhashable).
                if not all(isinstance(v, str) for v in pair) or pair not in allowed:
                    good = next(iter(allowed))
                    self.add("tsfm_config", "fail", "tsfm_config.bad_handler", module=str(pair[0])[:120],
                             cls=str(pair[1])[:120], allowed=f"{good[0]} / {good[1]}")
                    return
                if not mod_key.startswith("tuning"):
                    handler = handler or f"{pair[0]}.{pair[1]}"
        if handler is None:
            self.add("tsfm_config", "fail", "tsfm_config.no_handler")
            return
        for name, allowed_names in rules.TSFM_REQUIRED_MODEL_NAMES.items():
            if name in doc and not _allowed_tsfm_name(name, doc[name], allowed_names):
                self.add("tsfm_config", "fail", "tsfm_config.bad_name", key=name, value=str(doc[name])[:120],
                         expected=" or ".join(sorted(allowed_names)))
                return
        cfg = self.config or {}
        for key, source_key in rules.TSFM_LENGTHS.items():
            want, have = cfg.get(source_key), doc.get(key)
            if _positive_int(want) and have != want:
                self.add("tsfm_config", "warn", "tsfm_config.warn_length", key=key, value=str(have)[:40],
                         source_key=source_key, expected=want)
                return
        context, minimum = cfg.get("context_length"), doc.get("minimum_context_length")
        if _positive_int(context) and _positive_int(minimum) and minimum > context:
            self.add("tsfm_config", "warn", "tsfm_config.warn_length", key="minimum_context_length",
                     value=str(minimum), source_key="context_length", expected=context)
            return
        self.add("tsfm_config", "pass", "tsfm_config.pass", handler=handler)

    # -- sizing and specs -----------------------------------------------------------------------------------
    def size_and_specs(self) -> None:
        r = self.report
        if self.config is None:
            self.add("size", "skip", "size.skip", reason="config.json is missing or invalid")
            self.add("software_spec", "skip", "software_spec.skip")
            return
        arch = self.arch
        uncertified_ok = arch is None and self.checks["architecture"].status == "warn"
        if arch:
            specs = list(arch.software_specs)
            confs = arch.configurations
        elif uncertified_ok:
            specs = [rules.SPEC_VLLM]
            confs = rules.UNCERTIFIED_CONFIGURATIONS
        else:
            specs, confs = [], ()
        preferred = list(rules.SOFTWARE_SPECS)
        r.software_specs = sorted(specs, key=lambda s: (s not in (rules.SPEC_TGI, rules.SPEC_VLLM), s))
        r.recommended_software_spec = min(specs, key=preferred.index) if specs else None
        if specs:
            self.add("software_spec", "pass", "software_spec.pass", specs=", ".join(r.software_specs),
                     model_type=r.model_type, recommended=r.recommended_software_spec)
        else:
            self.add("software_spec", "fail", "software_spec.fail", model_type=r.model_type)
        if r.parameters is None:
            estimate = estimate_parameters(self.config) if r.family == "general" else None
            if estimate is not None:
                r.parameters, r.parameters_exact = estimate, False
        r.context_length = context_length(self.config)
        if r.family == "time_series":
            self.size_time_series(confs)
        elif not confs:
            self.add("size", "skip", "size.skip", reason="the architecture is not supported")
        else:
            self.size_general(confs)
        r.memory = memory(self.config, model_type=r.model_type, family=r.family,
                          serving_bytes=self.sizing_bytes if self.sizing_bytes is not None else r.serving_bytes,
                          configurations=rules.allowed_configurations(r.model_type, r.family))

    def size_general(self, confs: tuple[str, ...]) -> None:
        r = self.report
        exact = r.serving_bytes is not None
        if exact:
            serving = r.serving_bytes
        elif any(s.problem for s in self.shards):
            self.add("size", "skip", "size.skip", reason="a safetensors header is malformed")
            return
        elif r.parameters is not None:
            serving = r.parameters * 2
        else:
            self.add("size", "skip", "size.skip",
                     reason="there are no safetensors headers and config.json lacks the sizes to estimate from")
            return
        assert serving is not None
        self.sizing_bytes = serving
        params16 = serving // 2
        params = {"params": _human(params16), "params_16bit": params16, "serving_gb": round(serving / 1e9, 1),
                  "model_type": r.model_type}
        fit = rules.configuration_for_serving_bytes(serving, confs)
        if fit:
            r.configuration = fit
            label = rules.CONFIGURATIONS[fit].label
            if exact:
                self.add("size", "pass", "size.pass", configuration=label, **params)
            else:
                self.add("size", "pass", "size.pass_estimate", configuration=label, **params)
        else:
            no_tp = bool(self.arch and not self.arch.tensor_parallel)
            bound = rules.CONFIGURATIONS["small" if no_tp else "large"].max_parameters or 0
            params["params"] = _human_beyond(params16, bound)
            key = "size.fail_no_tp" if no_tp else "size.fail_too_large"
            self.add("size", "fail", key if exact else f"{key}_estimate", **params)

    def size_time_series(self, confs: tuple[str, ...]) -> None:
        try:
            payload = parse_payload(self.options.payload)
        except ValueError:
            payload = None  # callers validate; a page may pass what a user typed
        result = size_time_series(self.options.concurrent_users, payload)
        self.report.configuration = result.configuration
        self.add("size", result.status, result.key, **result.params)

    def known_issues(self) -> None:
        cfg = self.config
        if cfg is None:
            self.add("known_issues", "skip", "known_issues.skip")
            return
        llama3, factor = rules.llama3_rope_scaling(cfg)
        if llama3:
            version = rules.ROPE_FIX["min_transformers"]
            if factor is None:
                self.add("known_issues", "warn", "known_issues.rope_llama3_no_factor", min_transformers=version)
                return
            # Name the spec the user can pick (catalog data: which runtimes have transformers >= 4.43).
            newer = [s for s in self.report.software_specs if rules.SPECS_TRANSFORMERS_4_43.get(s)]
            if newer:
                older = [s for s in self.report.software_specs if s not in newer]
                self.add("known_issues", "warn", "known_issues.rope_llama3_spec", factor=factor,
                         min_transformers=version, spec=" or ".join(newer),
                         older=", ".join(older) or "an older runtime")
            else:
                self.add("known_issues", "warn", "known_issues.rope_llama3", factor=factor,
                         min_transformers=version)
            self.prep.add("fix_rope_scaling")
            return
        self.add("known_issues", "pass", "known_issues.pass")


    def context(self) -> None:
        """Whether the recommended configuration holds one sequence of the default
        length (min(context_length, 2048)) in its KV cache (report-contract: context)."""
        r = self.report
        mem = r.memory
        if self.config is None:
            self.add("context", "skip", "context.skip_config")
            return
        if r.family == "time_series":
            self.add("context", "skip", "context.skip_time_series")
            return
        if mem is None or r.configuration not in mem["configurations"]:
            self.add("context", "skip", "context.skip_size")
            return
        per_token = mem["kv_cache_bytes_per_token"]
        if per_token is None:
            self.add("context", "skip", "context.skip_fields")
            return
        conf = r.configuration
        assert conf is not None
        tokens = mem["configurations"][conf]["kv_cache_tokens"]
        length = default_sequence_length(r.context_length)
        params: dict[str, Any] = {"configuration": rules.CONFIGURATIONS[conf].label, "tokens": tokens,
                                  "per_token": per_token, "length": length}
        if tokens >= length:
            self.add("context", "pass", "context.pass", sequences=tokens // length, **params)
            return
        allowed = rules.allowed_configurations(r.model_type, r.family)
        up = rules.next_configuration(conf, allowed)
        minimum = next(p.minimum for p in rules.DEPLOYMENT_PARAMETERS if p.name == "max_sequence_length")
        room = "" if tokens >= (minimum or 0) else "_no_room"
        if up is None or up not in mem["configurations"]:
            self.add("context", "warn", f"context.warn{room}_top", largest=tokens, minimum=minimum, **params)
            return
        self.add("context", "warn", f"context.warn{room}", largest=tokens, minimum=minimum,
                 next_configuration=rules.CONFIGURATIONS[up].label,
                 next_tokens=mem["configurations"][up]["kv_cache_tokens"], **params)


#: small files that most inspections read whole
_READ_AHEAD = ("config.json", "model.safetensors.index.json", "tokenizer.json", "tsfm_config.json")


def inspect_source(source: Source, options: InspectOptions | None = None) -> Report:
    # The cyclic collector off for the inspection (it builds no cycles): with every shard's
    # parsed header alive, each collection the parses trigger walks them all again (a 30-shard
    # folder took 2.5 times as long with it on). Back on at the end, as no_gc leaves it.
    with no_gc():
        return _Inspection(source, options or InspectOptions()).run()


_MAX_PARAM_CHARS = 300


def _allowed_tsfm_name(key: str, value: object, allowed: set[str]) -> bool:
    """An allowed name, or (for a package key) a dotted module path inside an
    allowed package: compared as text, never imported."""
    if not isinstance(value, str):
        return False
    if value in allowed:
        return True
    if key not in rules.TSFM_PACKAGE_KEYS:
        return False
    head, _, rest = value.partition(".")
    return head in allowed and bool(rest) and all(part.isidentifier() and part.isascii() for part in rest.split("."))


def _positive_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _names(paths: list[str], limit: int = 4) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


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


def _quant_bits(cfg: dict | None) -> int | None:
    q = (cfg or {}).get("quantization_config") or {}
    for key in ("bits", "w_bit", "wbits"):
        v = q.get(key) if isinstance(q, dict) else None
        if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 32:
            return v
    return 4


__all__ = ["inspect", "inspect_source", "InspectOptions", "Report", "SourceError"]
