"""Facts: everything an inspection reads from a source, gathered once.

`gather(source, limits, progress)` lists the source and reads config.json
(or the legacy quantization files), the safetensors index, each safetensors
header, tokenizer.json and tsfm_config.json into a frozen `Facts`. It judges
nothing: a file that cannot be read is kept as its `JsonProblem`, a header as
its `HeaderProblem`, for the checks (cfm/inspection/checks/) to word.

It reads exactly what the checks need and no more: tokenizer.json is not read
for a time-series model, tsfm_config.json only for one; the bytes read are
the report's `files.bytes_read`.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cfm import catalog as rules

from .jsonsafe import JsonProblem, loads_bounded
from .limits import InspectLimits
from .safetensors_header import HeaderInfo, HeaderProblem, header_length, parse_header
from .sources import FileTooLarge, Source

#: step key, done, total (the engine adds the bytes read so far)
StepProgress = Callable[[str, int, int], None]

#: small files that most inspections read whole
_READ_AHEAD = ("config.json", "model.safetensors.index.json", "tokenizer.json", "tsfm_config.json")


@dataclass(frozen=True)
class JsonFile:
    """A JSON file as read: its value, or why it could not be read."""
    value: Any = None
    problem: JsonProblem | None = None


@dataclass(frozen=True)
class Shard:
    """A safetensors file and its parsed header (or why it has none)."""
    path: str
    size: int
    info: HeaderInfo | None = None
    problem: HeaderProblem | None = None


@dataclass(frozen=True)
class Facts:
    #: regular files by path, with their sizes
    files: Mapping[str, int]
    #: root entries that exist but are not regular files, with what they are
    not_files: Mapping[str, str]
    #: config.json as read; None when there is none
    config_file: JsonFile | None
    #: config.json when it is an object with a model_type (the legacy quantization file merged in), else None
    config: dict[str, Any] | None
    #: the root's .safetensors files, sorted
    safetensors: tuple[str, ...]
    #: the safetensors index's name, its weight_map, or the problem with it (reason and words)
    index_name: str | None
    weight_map: Mapping[str, str] | None
    index_problem: JsonProblem | None
    #: the shards the model is made of, with their headers
    shards: tuple[Shard, ...]
    #: the index names shards that are not there: the headers cannot give the model's size
    incomplete: bool
    #: tokenizer.json as read (an object, or a problem); None when absent or not read (time series)
    tokenizer_file: JsonFile | None
    #: tsfm_config.json as read; None when absent or not read (not a time-series model)
    tsfm_file: JsonFile | None
    bytes_read: int
    requests: int
    #: the caps the files were read under (the checks' messages name them)
    limits: InspectLimits

    def root(self, name: str) -> bool:
        return name in self.files


def gather(source: Source, limits: InspectLimits, progress: StepProgress) -> Facts:
    progress("listing_files", 0, 0)
    files = source.list_files()
    _read_ahead(source, files, limits)
    reader = _Reader(source, files, limits)
    progress("reading_config", 0, 0)
    config_file, config = _read_config(reader)
    root_files = {p: s for p, s in files.items() if "/" not in p}
    safetensors = tuple(sorted(p for p in root_files if p.endswith(".safetensors")))
    index_name = next((p for p in ("model.safetensors.index.json",) if p in root_files), None) or next(
        (p for p in sorted(root_files) if p.endswith(".safetensors.index.json")), None)
    weight_map, index_problem = _read_index(reader, index_name) if index_name else (None, None)
    shard_names: list[str] = list(safetensors)
    incomplete = False
    if weight_map is not None:
        named = sorted(set(weight_map.values()))
        # Files beside the index that it does not name (e.g. a consolidated copy) are not the model.
        shard_names = [n for n in named if n in root_files]
        incomplete = len(shard_names) < len(named)
    shards = _read_headers(source, [Shard(p, root_files[p]) for p in shard_names], limits, progress)
    # The later reads come after "checking" is announced, as they always have (progress is observable).
    progress("checking", 0, 0)
    family = _family(config)
    tokenizer_file = None
    if family != "time_series" and "tokenizer.json" in files:
        tokenizer_file = reader.json_file("tokenizer.json", limits.max_small_file_bytes)
    tsfm_file = None
    if config is not None and family == "time_series" and "tsfm_config.json" in files:
        tsfm_file = reader.json_file("tsfm_config.json", limits.max_small_file_bytes)
    return Facts(files=files, not_files=source.not_files(), config_file=config_file, config=config,
                 safetensors=safetensors, index_name=index_name, weight_map=weight_map,
                 index_problem=index_problem, shards=shards, incomplete=incomplete,
                 tokenizer_file=tokenizer_file, tsfm_file=tsfm_file, bytes_read=source.bytes_read,
                 requests=source.requests, limits=limits)


def _family(config: dict[str, Any] | None) -> str:
    """The family, as derived.py names it: here only to know which of tokenizer.json and
    tsfm_config.json the checks will want (a time-series model has no tokenizer)."""
    arch = rules.architecture_for(config["model_type"]) if config else None
    return arch.family if arch else "general"


class _Reader:
    def __init__(self, source: Source, files: Mapping[str, int], limits: InspectLimits):
        self.source, self.files, self.limits = source, files, limits

    def read_json(self, path: str, cap: int) -> Any:
        """Parsed JSON, or raise JsonProblem (too_large, not_utf8, too_deep, not_json, unreadable)."""
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

    def json_file(self, path: str, cap: int) -> JsonFile:
        try:
            return JsonFile(value=self.read_json(path, cap))
        except JsonProblem as exc:
            return JsonFile(problem=exc)


def _read_ahead(source: Source, files: Mapping[str, int], limits: InspectLimits) -> None:
    """Tell the source what will be read, so that a remote one fetches it at
    once rather than a round trip after another. Without an index the root's
    safetensors are the shards; with one, their headers are sized from it (the
    source learns that when the index is read)."""
    root = [p for p in files if "/" not in p]
    has_index = any(p.endswith(".safetensors.index.json") for p in root)
    headers = [] if has_index else sorted(p for p in root if p.endswith(".safetensors"))
    # Only what will be read: a file over its cap is refused by its listed size, unread.
    caps = {"config.json": limits.max_config_bytes}
    wanted = [p for p in _READ_AHEAD if p in files and files[p] <= caps.get(p, limits.max_small_file_bytes)]
    source.prefetch(files=wanted, headers=headers)


def _read_config(reader: _Reader) -> tuple[JsonFile | None, dict[str, Any] | None]:
    if "config.json" not in reader.files:
        return None, None
    found = reader.json_file("config.json", reader.limits.max_config_bytes)
    cfg = found.value
    if found.problem or not isinstance(cfg, dict):
        return found, None
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str) or not model_type.strip():
        return found, None
    if not isinstance(cfg.get("quantization_config"), dict):
        quant = _legacy_quant_config(reader)
        if quant is not None:  # the engine reads it where the runtime does: as the config's own
            cfg = {**cfg, "quantization_config": quant}
    return found, cfg


def _legacy_quant_config(reader: _Reader) -> dict | None:
    """AutoGPTQ's quantize_config.json or AutoAWQ's quant_config.json, which
    older quantized models carry instead of a quantization_config in
    config.json, and which the runtime (vLLM) reads the same way. One that
    cannot be read is ignored: the quantization check then says the weights
    are not quantized."""
    for name, method in (("quantize_config.json", "gptq"), ("quant_config.json", "awq")):
        if name not in reader.files:
            continue
        try:
            doc = reader.read_json(name, reader.limits.max_config_bytes)
        except JsonProblem:
            return None
        if not isinstance(doc, dict):
            return None
        found = doc.get("quant_method")
        return {**doc, "quant_method": found if isinstance(found, str) and found.strip() else method}
    return None


def _read_index(reader: _Reader, index_name: str) -> tuple[dict[str, str] | None, JsonProblem | None]:
    """The index's weight_map, or the problem that makes it unusable."""
    try:
        index = reader.read_json(index_name, reader.limits.max_small_file_bytes)
        wm = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(wm, dict) or not all(isinstance(v, str) for v in wm.values()):
            raise JsonProblem("not_json", 'no "weight_map" object of tensor name to shard file')
        if not wm:
            raise JsonProblem("not_json", 'its "weight_map" names no tensors')
        odd = next((v for v in wm.values() if not v.endswith(".safetensors")), None)
        if odd is not None:
            raise JsonProblem("not_json", f'its "weight_map" names {odd[:120]}, not a .safetensors file')
        return wm, None
    except JsonProblem as exc:
        return None, exc


def _read_headers(source: Source, shards: list[Shard], limits: InspectLimits,
                  progress: StepProgress) -> tuple[Shard, ...]:
    total = len(shards)
    if not total:
        return ()
    progress("reading_headers", 0, total)
    done = 0
    lock = threading.Lock()
    tensors_so_far = 0

    def one(shard: Shard) -> Shard:
        nonlocal tensors_so_far
        try:
            info = _read_header(source, shard, limits)
            # max_tensors bounds the whole model, not each shard: many shards of a
            # million tensors each would otherwise add up without limit.
            with lock:
                tensors_so_far += len(info.tensors)
                count = tensors_so_far
            if count > limits.max_tensors:
                raise HeaderProblem("header_too_many_tensors", count=count, cap=limits.max_tensors)
            return Shard(shard.path, shard.size, info=info)
        except HeaderProblem as exc:
            return Shard(shard.path, shard.size, problem=exc)
        except FileTooLarge as exc:
            return Shard(shard.path, shard.size, problem=HeaderProblem("header_over_cap", length=exc.size,
                                                                       cap=exc.cap))
        except OSError as exc:
            return Shard(shard.path, shard.size, problem=HeaderProblem("header_unreadable",
                                                                       detail=exc.strerror or str(exc)))

    read: list[Shard] = []
    workers = max(1, min(source.parallelism, total))
    if workers == 1:
        for shard in shards:
            read.append(one(shard))
            done += 1
            progress("reading_headers", done, total)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cfm-header") as pool:
            for result in pool.map(one, shards):
                read.append(result)
                done += 1
                progress("reading_headers", done, total)
    return tuple(read)


def _read_header(source: Source, shard: Shard, limits: InspectLimits) -> HeaderInfo:
    want = min(shard.size, max(8, source.header_prefetch))
    n, raw = source.read_header(shard.path, want, lambda prefix: header_length(prefix, shard.path, shard.size, limits))
    if len(raw) != n:
        raise HeaderProblem("header_length_past_file", length=n, size=shard.size)
    return parse_header(shard.path, raw, shard.size, limits)
