"""Writing safetensors files one tensor at a time (no torch needed here).

The header is known before any data (names, dtypes, shapes), so a writer
emits it first and then streams each tensor's bytes: memory stays at one
tensor, never the model. The header JSON is padded with spaces to a
multiple of 8 bytes, as the safetensors library does, so the data that
follows is aligned.
"""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

from cfm.inspection.limits import InspectLimits
from cfm.inspection.safetensors_header import HeaderInfo, HeaderProblem, header_length, parse_header

from .errors import PrepareError

#: What transformers' save_pretrained writes; the platform expects exactly this.
PT_METADATA = {"format": "pt"}


def read_header(path: Path, limits: InspectLimits | None = None) -> tuple[HeaderInfo, int, dict]:
    """(parsed header, offset where the data starts, raw header document)."""
    limits = limits or InspectLimits()
    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        try:
            n = header_length(prefix, path.name, size, limits)
            raw = fh.read(n)
            info = parse_header(path.name, raw, size, limits)
        except HeaderProblem as exc:
            raise PrepareError("unreadable_weights", f"{path.name}: malformed safetensors header ({exc.key})") from None
    return info, 8 + n, json.loads(raw)


def rewrite_metadata(src: Path, dest: Path, metadata: dict[str, str] | None = None) -> None:
    """Copy `src` to `dest` with only the header's `__metadata__` replaced:
    same tensors, same offsets, same data bytes (copied in chunks). The data
    offsets are relative to the end of the header, so a header of another
    length leaves them valid."""
    _info, data_start, doc = read_header(src)
    old = doc.pop("__metadata__", None) or {}
    new_meta = {**{k: v for k, v in old.items() if isinstance(v, str)}, **(metadata or PT_METADATA)}
    out_doc = {"__metadata__": new_meta, **doc}
    raw = json.dumps(out_doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        fout.write(struct.pack("<Q", len(raw)) + raw)
        fin.seek(data_start)
        shutil.copyfileobj(fin, fout, 8 * 1024 * 1024)
