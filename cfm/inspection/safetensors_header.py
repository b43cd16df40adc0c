"""The safetensors header, read and validated without touching the weights.

Format: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON: an object
mapping tensor names to {"dtype", "shape", "data_offsets": [begin, end]}
(offsets relative to the byte buffer after the header), plus an optional
"__metadata__" object of string to string. The buffer must be covered
exactly: no gaps, no overlaps, nothing past the last tensor.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cfm.catalog import DTYPE_BITS

from .jsonsafe import JsonProblem, loads_bounded
from .limits import InspectLimits


class HeaderProblem(Exception):
    """A malformed header; `key` names the message template, `params` fill it."""

    def __init__(self, key: str, /, **params):
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class HeaderInfo:
    path: str
    header_bytes: int
    metadata: dict | None
    tensors: dict[str, TensorInfo] = field(default_factory=dict)


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise HeaderProblem("header_duplicate_key", name=str(key)[:120])
        obj[key] = value
    return obj


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def header_length(prefix: bytes, path: str, file_size: int, limits: InspectLimits) -> int:
    if file_size < 8 or len(prefix) < 8:
        raise HeaderProblem("header_file_too_small", size=file_size)
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > file_size - 8:
        raise HeaderProblem("header_length_past_file", length=n, size=file_size)
    if n > limits.max_header_bytes:
        raise HeaderProblem("header_over_cap", length=n, cap=limits.max_header_bytes)
    if n < 2:
        raise HeaderProblem("header_not_object", detail="empty header")
    return n


def parse_header(path: str, raw: bytes, file_size: int, limits: InspectLimits) -> HeaderInfo:
    """Validate the JSON header `raw` (without the 8-byte length) of a file of
    `file_size` bytes. Raises HeaderProblem naming what is wrong."""
    n = len(raw)
    if raw[:1] != b"{":
        # The format requires the JSON to start with '{' (trailing spaces pad it).
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HeaderProblem("header_not_utf8") from None
    try:
        doc = loads_bounded(raw, max_bytes=limits.max_header_bytes, max_depth=None,
                            object_pairs_hook=_no_duplicates)
    except JsonProblem as exc:
        key = {"not_utf8": "header_not_utf8", "too_deep": "header_not_json", "too_large": "header_over_cap"}.get(
            exc.reason, "header_not_json")
        raise HeaderProblem(key, detail=exc.detail, length=n, cap=limits.max_header_bytes) from None
    if not isinstance(doc, dict):
        raise HeaderProblem("header_not_object", detail=type(doc).__name__)
    metadata = doc.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise HeaderProblem("header_metadata_not_object")
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise HeaderProblem("header_metadata_not_string", key=str(k)[:80], type=type(v).__name__)
    if len(doc) > limits.max_tensors:
        raise HeaderProblem("header_too_many_tensors", count=len(doc), cap=limits.max_tensors)
    data_len = file_size - 8 - n
    spans: list[tuple[int, int, str]] = []
    tensors: dict[str, TensorInfo] = {}
    for name, entry in doc.items():
        shown = name[:120]
        if not isinstance(entry, dict):
            raise HeaderProblem("header_bad_entry", tensor=shown)
        dtype = entry.get("dtype")
        shape = entry.get("shape")
        offsets = entry.get("data_offsets")
        if not isinstance(dtype, str):
            raise HeaderProblem("header_bad_entry", tensor=shown)
        bits = DTYPE_BITS.get(dtype)
        if bits is None:
            raise HeaderProblem("header_unknown_dtype", tensor=shown, dtype=dtype[:40])
        if not isinstance(shape, list) or len(shape) > limits.max_dims:
            raise HeaderProblem("header_bad_shape", tensor=shown, shape=str(shape)[:80])
        numel = 1
        for d in shape:
            if not _is_int(d) or d < 0:
                raise HeaderProblem("header_bad_shape", tensor=shown, shape=str(shape)[:80])
            numel *= d  # Python ints do not overflow; at most 64 dims of bounded digits
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
                or offsets[0] < 0 or offsets[1] < offsets[0]):
            raise HeaderProblem("header_bad_offsets", tensor=shown, offsets=str(offsets)[:80])
        begin, end = offsets
        if end > data_len:
            raise HeaderProblem("header_offsets_out_of_range", tensor=shown, end=end, size=data_len)
        expected_bits = numel * bits
        if expected_bits % 8 or expected_bits // 8 != end - begin:
            raise HeaderProblem("header_size_mismatch", tensor=shown, shape=str(shape)[:80], dtype=dtype,
                                expected=(expected_bits + 7) // 8, actual=end - begin)
        spans.append((begin, end, shown))
        tensors[name] = TensorInfo(dtype, tuple(shape), end - begin)
    spans.sort()
    pos = 0
    for begin, end, shown in spans:
        if begin < pos:
            raise HeaderProblem("header_overlap", tensor=shown, begin=begin, previous_end=pos)
        if begin > pos:
            raise HeaderProblem("header_gap", tensor=shown, begin=begin, previous_end=pos)
        pos = end
    if pos != data_len:
        raise HeaderProblem("header_trailing_bytes", end=pos, size=data_len)
    return HeaderInfo(path=path, header_bytes=n, metadata=metadata, tensors=tensors)
