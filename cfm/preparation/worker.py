"""The sandboxed side of preparation: run as a separate process by
`sandbox.py` (`python -I worker.py TASK.json`), never imported by Django.

It is self-contained (stdlib + torch/transformers): it imports nothing of
cfm, so a hostile model cannot reach Django settings or the database.

Limits, set once torch/transformers are imported (trusted code) and before
any untrusted byte is read:
- RLIMIT_AS: the address space may grow by at most `max_memory` bytes plus
  the size of the file being memory-mapped (a mapped file costs address
  space, not memory) beyond what the interpreter and torch already hold;
- RLIMIT_CPU: CPU seconds (the parent also enforces wall-clock time);
- RLIMIT_CORE 0: a crash leaves no core file of model data behind.

Loading uses `torch.load(weights_only=True, mmap=True)`: the restricted
unpickler builds tensors and plain containers only, and refuses any other
global (a `__reduce__` payload is never called). Tensors are then written
one by one: the safetensors header first, then each tensor's bytes, and the
pages of a tensor already written are dropped from the process
(madvise DONTNEED), so resident memory stays near the largest tensor.

Protocol: progress lines on stdout (`{"event": "progress", ...}` JSON, one
per line; anything else there is ignored), the result as JSON in the file
named by the task (`{"ok": true, ...}` or `{"ok": false, "code", "message"}`).
"""
from __future__ import annotations

import json
import mmap
import os
import resource
import struct
import sys
import time
import traceback

#: torch dtype name -> safetensors dtype
_DTYPES = {
    "float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
    "uint16": "U16", "uint32": "U32", "uint64": "U64", "complex64": "C64",
    "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2", "float8_e8m0fnu": "F8_E8M0",
    "float8_e4m3fnuz": "F8_E4M3FNUZ", "float8_e5m2fnuz": "F8_E5M2FNUZ",
}
#: The names save_pretrained drops when the output embedding is tied to the input one.
_TIED_OUTPUT_SUFFIXES = ("lm_head.weight", "embed_out.weight")


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def emit(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _status(key: str) -> int:
    """A /proc/self/status figure in bytes (0 where there is no /proc)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _vm_size() -> int:
    return _status("VmSize")


def peak_rss() -> int:
    """This process image's peak resident memory. VmHWM, not ru_maxrss:
    after fork+exec, ru_maxrss keeps the parent's peak at fork time."""
    return _status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def limit_resources(max_memory: int, cpu_seconds: int, mapped: int = 0) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if max_memory:
        limit = _vm_size() + max_memory + mapped
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def raise_as_limit(extra: int) -> None:
    """Each .bin is mapped in turn: allow the next file's mapping."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY and extra > 0:
        new = soft + extra if hard == resource.RLIM_INFINITY else min(soft + extra, hard)
        resource.setrlimit(resource.RLIMIT_AS, (new, hard))


# --- convert ------------------------------------------------------------------------------------------
def _st_dtype(t) -> str:
    name = str(t.dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise Refused("unreadable_weights", f"tensor dtype {name} has no safetensors equivalent")
    return _DTYPES[name]


def _load(torch, path: str):
    import pickle

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            # Files of the legacy (pre-zip) format cannot be mapped: load them
            # whole; still the restricted unpickler.
            if "mmap" not in str(exc) and "zipfile" not in str(exc):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line for line in first if "Unsupported global" in line or "GLOBAL" in line), "")
        raise Refused("unsafe_pickle", f"{os.path.basename(path)} contains objects other than tensors "
                      f"and was refused without running them. {detail[:300]}".strip()) from None
    except MemoryError:
        raise Refused("out_of_memory", f"loading {os.path.basename(path)} went over the memory limit") from None
    except (RuntimeError, ValueError, EOFError, OSError, KeyError, TypeError, AttributeError) as exc:
        raise Refused("unreadable_weights", f"{os.path.basename(path)} is not a readable PyTorch "
                      f"weights file: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise Refused("unreadable_weights", f"{os.path.basename(path)} holds a {type(obj).__name__}, "
                      "not a dictionary of tensors")
    state = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise Refused("unreadable_weights", f"{os.path.basename(path)}: entry {str(name)[:80]!r} is not "
                          "a named tensor")
        state[name] = value
    return state


def _plan_aliases(state, tied: bool):
    """Names to write, and names dropped as aliases (dropped -> kept).

    Tensors that share storage: when the config ties the output embedding
    and the alias is exact (same offset, shape, strides), the output name is
    dropped, as save_pretrained does; any other sharing is written as
    separate copies (safetensors forbids overlapping data), which is lossless.
    """
    groups: dict[int, list[str]] = {}
    for name, t in state.items():
        if t.numel() == 0:
            continue
        groups.setdefault(t.untyped_storage().data_ptr(), []).append(name)
    dropped: dict[str, str] = {}
    for names in groups.values():
        if len(names) < 2 or not tied:
            continue
        keep = [n for n in names if not n.endswith(_TIED_OUTPUT_SUFFIXES)]
        if not keep:
            continue
        kept = keep[0]
        k = state[kept]
        for n in names:
            t = state[n]
            if n.endswith(_TIED_OUTPUT_SUFFIXES) and t.shape == k.shape and t.stride() == k.stride() \
                    and t.storage_offset() == k.storage_offset() and t.dtype == k.dtype:
                dropped[n] = kept
    return [n for n in state if n not in dropped], dropped


def _madvise_free(t) -> None:
    """Drop the resident pages of a memory-mapped tensor already written."""
    nbytes = t.untyped_storage().nbytes()
    if nbytes < (1 << 20):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        page = mmap.PAGESIZE
        start = t.untyped_storage().data_ptr()
        aligned = start - start % page
        length = nbytes + (start - aligned)
        length -= length % page
        if length > 0:
            libc.madvise(ctypes.c_void_p(aligned), ctypes.c_size_t(length), 4)  # MADV_DONTNEED
    except (OSError, AttributeError):
        pass  # only a memory optimisation


def _header(entries, metadata) -> bytes:
    doc = {"__metadata__": metadata}
    offset = 0
    for name, dtype, shape, nbytes in entries:
        doc[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def convert(task: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    # Limits after the import (trusted code) and before the first untrusted byte.
    limit_resources(task["max_memory"], task["cpu_seconds"])
    began = time.monotonic()  # after the import: the conversion's own time
    cast = task.get("cast")  # None, "F16" or "BF16"
    cast_dtype = {"F16": torch.float16, "BF16": torch.bfloat16}.get(cast or "")
    out_dir = task["out_dir"]
    max_shard = int(task["max_shard_bytes"])
    parts, dropped_all, sources = [], {}, {}
    part_no = 0
    done_bytes = 0
    for path in task["inputs"]:
        raise_as_limit(os.path.getsize(path))
        state = _load(torch, path)
        names, dropped = _plan_aliases(state, bool(task.get("tied")))
        dropped_all.update(dropped)
        entries = []
        for name in names:
            t = state[name]
            src = _st_dtype(t)
            dst = src
            if cast and cast_dtype is not None and t.dtype == torch.float32:
                dst = cast
            nbytes = t.numel() * (2 if dst != src else t.element_size())
            entries.append((name, dst, list(t.shape), nbytes))
            sources[name] = {"dtype": src, "shape": list(t.shape), "file": os.path.basename(path)}
        # Split this file's tensors into shards of at most max_shard bytes (a
        # tensor larger than that gets a shard of its own), in file order.
        current: list[tuple[str, str, list[int], int]] = []
        shards, size = [], 0
        for entry in entries:
            if current and size + entry[3] > max_shard:
                shards.append(current)
                current, size = [], 0
            current.append(entry)
            size += entry[3]
        if current or not shards:
            shards.append(current)
        for shard in shards:
            part_no += 1
            fname = f"part-{part_no:05d}.safetensors"
            tmp = os.path.join(out_dir, fname + ".partial")
            with open(tmp, "wb") as fh:
                fh.write(_header(shard, {"format": "pt"}))
                for name, dst, _shape, nbytes in shard:
                    t = state[name]
                    out = t.to(cast_dtype) if dst != _st_dtype(t) else t
                    flat = out.contiguous().reshape(-1)
                    if flat.numel():
                        fh.write(memoryview(flat.view(torch.uint8).numpy()))
                    del flat, out
                    _madvise_free(t)
                    done_bytes += nbytes
                    emit(event="progress", bytes=done_bytes, tensor=name[:200])
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, os.path.join(out_dir, fname))
            parts.append({"file": fname, "tensors": [e[0] for e in shard], "bytes": sum(e[3] for e in shard)})
        del state
    return {"ok": True, "parts": parts, "dropped": dropped_all, "sources": sources, "bytes": done_bytes,
            "convert_seconds": round(time.monotonic() - began, 3)}


# --- tokenizer -------------------------------------------------------------------------------------------
def tokenizer(task: dict) -> dict:
    import tempfile

    import transformers
    from transformers.convert_slow_tokenizer import SLOW_TO_FAST_CONVERTERS  # noqa: F401  (loaded before the limit)

    limit_resources(task["max_memory"], task["cpu_seconds"])

    folder, out = task["folder"], task["out"]
    cls_name = task["class_name"]
    cls = getattr(transformers, cls_name, None)
    if cls is None:
        raise Refused("tokenizer_failed", f"transformers has no tokenizer class {cls_name}")
    try:
        # Never trust_remote_code: only transformers' own classes, named by us.
        tok = cls.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
        with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as tmp:
            tok.save_pretrained(tmp)
            made = os.path.join(tmp, "tokenizer.json")
            if not os.path.exists(made):
                backend = getattr(tok, "backend_tokenizer", None)
                if backend is None:
                    raise Refused("tokenizer_failed", f"{cls_name} produced no tokenizer.json")
                backend.save(made)
            os.replace(made, out)
    except Refused:
        raise
    except MemoryError:
        raise Refused("out_of_memory", "the tokenizer conversion went over the memory limit") from None
    except Exception as exc:  # noqa: BLE001 - any library failure becomes one clear line
        raise Refused("tokenizer_failed", _tokenizer_failure(folder, cls_name, exc)) from None
    return {"ok": True, "class_name": cls_name}


def _tokenizer_failure(folder: str, cls_name: str, exc: Exception) -> str:
    """One line saying which tokenizer files could not be read or converted.
    transformers tries one reader after another (sentencepiece, then
    tiktoken) and reports the last one's complaint: a corrupt tokenizer.model
    ends as "`tiktoken` is required ... pip install tiktoken", which names
    neither the file nor the fault and sends the user to install a package.
    Such an advice about a missing package is not passed on."""
    files = ", ".join(sorted(os.listdir(folder))[:8]) or "none"
    line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    head = f"the tokenizer files ({files}) could not be read or converted by {cls_name}"
    if isinstance(exc, ImportError) or "pip install" in line or " is required" in line:
        return f"{head}: they are corrupt, cut short or not {cls_name}'s format"
    return f"{head}: {line}"


COMMANDS = {"convert": convert, "tokenizer": tokenizer}


def main(argv: list[str]) -> int:
    with open(argv[1]) as fh:
        task = json.load(fh)
    started = time.monotonic()
    try:
        result = COMMANDS[task["command"]](task)
    except Refused as exc:
        result = {"ok": False, "code": exc.code, "message": exc.message}
    except MemoryError:
        result = {"ok": False, "code": "out_of_memory", "message": "the conversion went over the memory limit"}
    except Exception as exc:  # noqa: BLE001 - reported as a result; the traceback goes to stderr only
        if "allocate memory" in str(exc) or "DefaultCPUAllocator" in str(exc):
            # torch's allocator reports RLIMIT_AS as a RuntimeError, not a MemoryError
            result = {"ok": False, "code": "out_of_memory", "message": "the conversion went over the memory limit"}
        else:
            traceback.print_exc(file=sys.stderr)
            result = {"ok": False, "code": "worker_crashed",
                      "message": f"unexpected {type(exc).__name__} in the conversion process"}
    result["seconds"] = round(time.monotonic() - started, 3)
    result["maxrss_bytes"] = peak_rss()
    tmp = task["result"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, task["result"])
    return 0 if result.get("ok") else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
