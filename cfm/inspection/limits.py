"""Caps that keep an inspection bounded in time and memory, whatever the input."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InspectLimits:
    #: largest safetensors header read (the format allows up to 100 MB)
    max_header_bytes: int = 100_000_000
    #: largest config.json
    max_config_bytes: int = 4_000_000
    #: largest other small file read whole (tokenizer.json, index, tsfm_config.json)
    max_small_file_bytes: int = 64_000_000
    #: deepest JSON nesting accepted in any file
    max_json_depth: int = 200
    #: most tensors in one model
    #: most tensors in one model (the largest published models hold ~100-200k;
    #: a million keeps a 100 MB header near 1 GB of memory, 300k near 350 MB)
    max_tensors: int = 300_000
    #: most dimensions in one tensor shape
    max_dims: int = 64
    #: archives: total declared/decompressed bytes, members, compression ratio
    archive_max_bytes: int = 2 * 1024**3
    archive_max_files: int = 10_000
    archive_max_ratio: int = 200
    #: most files listed in a local folder
    max_files: int = 100_000
