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

from .jsonsafe import JsonProblem, loads_bounded, no_gc
from .limits import InspectLimits


class HeaderProblem(Exception):
    """A malformed header; `key` names the message template, `params` fill it."""

    def __init__(self, key: str, /, **params):
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(slots=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    #: elements (the product of shape), computed once by the parser that checks the shape anyway
    numel: int = 1


@dataclass
class HeaderInfo:
    path: str
    header_bytes: int
    metadata: dict | None
    tensors: dict[str, TensorInfo] = field(default_factory=dict)


def _reject_constant(name: str):
    # NaN and Infinity are not JSON: the safetensors reader (serde_json) rejects them.
    raise ValueError(f"{name} is not JSON")


def _pairs_to_dict(pairs: tuple, what: str) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set = set()
        for key, _ in pairs:
            if key in seen:
                raise HeaderProblem("header_duplicate_key", name=f"{what}{str(key)[:120]}")
            seen.add(key)
    return obj


#: A Git LFS pointer file starts "version https://git-lfs.github.com/spec/v1" and is
#: under 1024 bytes (the LFS specification's own bound).
LFS_POINTER_START = b"version "
LFS_POINTER_MAX = 1024

#: The safetensors reader holds sizes in 64-bit integers; beyond, a value is no size.
_U64 = 2**64

def header_length(prefix: bytes, path: str, file_size: int, limits: InspectLimits) -> int:
    if file_size < 8 or len(prefix) < 8:
        raise HeaderProblem("header_file_too_small", size=file_size)
    if prefix[:8] == LFS_POINTER_START and file_size <= LFS_POINTER_MAX:
        # A clone made without git-lfs holds the pointer text, not the weights: its first
        # 8 bytes read as a header length of 2336927755350992246 bytes, which helps nobody.
        raise HeaderProblem("header_lfs_pointer", size=file_size)
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
    with no_gc():
        return _parse_header(path, raw, file_size, limits)


def _parse_header(path: str, raw: bytes, file_size: int, limits: InspectLimits) -> HeaderInfo:
    n = len(raw)
    if raw[:3] == b"\xef\xbb\xbf":
        # serde_json (the reference reader) rejects a byte-order mark; so must we.
        raise HeaderProblem("header_not_json", detail="a byte-order mark precedes the JSON", length=n,
                            cap=limits.max_header_bytes)
    # Every tensor needs its own JSON object: more '{' than the cap allows means too many
    # tensors, refused before the parse builds them all (a 100 MB header can hold ~2 million).
    braces = raw.count(b"{")
    if braces > limits.max_tensors + 2:
        raise HeaderProblem("header_too_many_tensors", count=braces - 1, cap=limits.max_tensors)
    try:
        # Objects come back as tuples of pairs (arrays stay lists): the C parser builds them
        # without calling Python per object, duplicate keys stay visible, and an object can
        # never pass for an array (a 100 MB header of a million tensors parses in seconds).
        doc = loads_bounded(raw, max_bytes=limits.max_header_bytes, max_depth=None, object_pairs_hook=tuple,
                            parse_constant=_reject_constant, strip_bom=False)
    except JsonProblem as exc:
        key = {"not_utf8": "header_not_utf8", "too_deep": "header_not_json", "too_large": "header_over_cap"}.get(
            exc.reason, "header_not_json")
        raise HeaderProblem(key, detail=exc.detail, length=n, cap=limits.max_header_bytes) from None
    if type(doc) is not tuple:
        raise HeaderProblem("header_not_object", detail=_json_kind(doc))
    doc = _pairs_to_dict(doc, "")
    metadata = doc.pop("__metadata__", None)
    if metadata is not None:
        if type(metadata) is not tuple:
            raise HeaderProblem("header_metadata_not_object")
        metadata = _pairs_to_dict(metadata, "__metadata__.")
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise HeaderProblem("header_metadata_not_string", key=str(k)[:80], type=_json_kind(v))
    if len(doc) > limits.max_tensors:
        raise HeaderProblem("header_too_many_tensors", count=len(doc), cap=limits.max_tensors)
    data_len = file_size - 8 - n
    max_dims = limits.max_dims
    spans: list[tuple[int, int, str]] = []
    tensors: dict[str, TensorInfo] = {}
    # Locals, not globals, in the loop that may run a million times.
    bits_of, u64, tensor_info, tuple_, list_, int_, str_ = DTYPE_BITS.get, _U64, TensorInfo, tuple, list, int, str
    append = spans.append
    for name, entry in doc.items():
        if type(entry) is not tuple_:
            raise HeaderProblem("header_bad_entry", tensor=name[:120])
        if len(entry) == 3 and entry[0][0] == "dtype" and entry[1][0] == "shape" and entry[2][0] == "data_offsets":
            # The order every writer uses: no dict to build (and no key can repeat in three distinct ones).
            dtype, shape, offsets = entry[0][1], entry[1][1], entry[2][1]
        else:
            pairs, entry = entry, dict(entry)
            if len(entry) != len(pairs):
                _pairs_to_dict(pairs, f"{name[:120]}.")  # raises, naming the repeated key
            dtype = entry.get("dtype")
            shape = entry.get("shape")
            offsets = entry.get("data_offsets")
        if type(dtype) is not str_:
            raise HeaderProblem("header_bad_entry", tensor=name[:120])
        bits = bits_of(dtype)
        if bits is None:
            raise HeaderProblem("header_unknown_dtype", tensor=name[:120], dtype=dtype[:40])
        if type(shape) is not list_ or len(shape) > max_dims:
            raise HeaderProblem("header_bad_shape", tensor=name[:120], shape=_show(shape))
        numel = 1
        for d in shape:
            if type(d) is not int_ or d < 0 or d >= u64:
                raise HeaderProblem("header_bad_shape", tensor=name[:120], shape=_show(shape))
            numel *= d
            if numel >= u64:  # the reader's element count would overflow
                raise HeaderProblem("header_bad_shape", tensor=name[:120], shape=_show(shape))
        if (type(offsets) is not list_ or len(offsets) != 2 or type(offsets[0]) is not int_
                or type(offsets[1]) is not int_ or offsets[0] < 0 or offsets[1] < offsets[0] or offsets[1] >= u64):
            raise HeaderProblem("header_bad_offsets", tensor=name[:120], offsets=_show(offsets))
        begin, end = offsets
        if end > data_len:
            raise HeaderProblem("header_offsets_out_of_range", tensor=name[:120], end=end, size=data_len)
        expected_bits = numel * bits
        if expected_bits % 8 or expected_bits // 8 != end - begin:
            raise HeaderProblem("header_size_mismatch", tensor=name[:120], shape=_show(shape), dtype=dtype,
                                expected=(expected_bits + 7) // 8, actual=end - begin)
        append((begin, end, name))
        tensors[name] = tensor_info(dtype, tuple_(shape), end - begin, numel)
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin < pos:
            raise HeaderProblem("header_overlap", tensor=name[:120], begin=begin, previous_end=pos)
        if begin > pos:
            raise HeaderProblem("header_gap", tensor=name[:120], begin=begin, previous_end=pos)
        pos = end
    if pos != data_len:
        raise HeaderProblem("header_trailing_bytes", end=pos, size=data_len)
    return HeaderInfo(path=path, header_bytes=n, metadata=metadata, tensors=tensors)


def _json_kind(value) -> str:
    if type(value) is tuple:
        return "object"
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _show(value) -> str:
    """A shape or offsets as the header wrote it, short (never a 10,000-digit number)."""
    if type(value) is list and all(type(v) is int for v in value):
        parts = [str(v) if v < 10**30 else f"{str(v)[:6]}...({len(str(v))} digits)" for v in value[:10]]
        return "[" + ", ".join(parts) + (", ..." if len(value) > 10 else "") + "]"
    if type(value) is tuple:
        return "an object"
    return _json_kind(value) if not isinstance(value, list) else f"a list of {len(value)} items, not all integers"
