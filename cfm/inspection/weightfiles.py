"""Sizes of a model's files as the source lists them: no byte of a file is
read for them, and no request is made beyond the listing the engine already
has (the Hub's tree listing, a folder's stat, an archive's member headers).

They answer "how big is this model" when the safetensors headers cannot (a
`.bin`-only model: its pickles are never opened), and "how much will Prepare
download" (the files a prepared folder needs)."""
from __future__ import annotations

from cfm import catalog as rules

#: Small files a prepared folder keeps beside the weights (config, tokenizer, chat templates).
KEEP_SUFFIXES = (".json", ".txt", ".model", ".jinja", ".tiktoken")


def is_weight_pickle(name: str) -> bool:
    """A PyTorch weights file (not a trainer's leftover such as optimizer.pt)."""
    low = name.lower()
    return low.endswith(rules.PYTORCH_WEIGHT_SUFFIXES) and not low.startswith(rules.NON_WEIGHT_PICKLES)


def weight_format(name: str) -> str | None:
    """The weights format of a root file (`safetensors`, `bin`, `pt`, `gguf`, ...), or None."""
    low = name.lower()
    if low.endswith(".safetensors"):
        return "safetensors"
    if is_weight_pickle(low) or low.endswith(rules.UNCONVERTIBLE_WEIGHT_SUFFIXES):
        return low.rsplit(".", 1)[1]
    return None


def bytes_by_format(listing: dict[str, int]) -> dict[str, int]:
    """Bytes of the root-level weight files per format, as listed."""
    out: dict[str, int] = {}
    for name, size in listing.items():
        fmt = weight_format(name) if "/" not in name else None
        if fmt is not None:
            out[fmt] = out.get(fmt, 0) + size
    return dict(sorted(out.items()))


def needed_files(listing: dict[str, int]) -> dict[str, int]:
    """The files of a repo, folder or archive that a prepared model folder
    needs: root-level weights (safetensors when there are any, else PyTorch
    pickles), their index, config and tokenizer files. Not READMEs, images,
    other formats (.gguf, .onnx, .h5, .msgpack), sub-folders (e.g.
    `original/`) or trainer leftovers (optimizer.pt, training_args.bin)."""
    root = {p: s for p, s in listing.items() if "/" not in p and not p.startswith(".")}
    has_safetensors = any(p.endswith(".safetensors") for p in root)
    keep: dict[str, int] = {}
    for path, size in root.items():
        low = path.lower()
        if low.endswith((".safetensors", ".safetensors.index.json")):
            keep[path] = size
        elif low.endswith(".bin.index.json") or is_weight_pickle(path):
            if not has_safetensors:
                keep[path] = size
        elif low.endswith(KEEP_SUFFIXES):
            keep[path] = size
    return keep
