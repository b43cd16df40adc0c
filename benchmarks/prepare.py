"""Conversion throughput and peak memory of the sandboxed .bin → safetensors
converter, for a ~1 GB model (a llama-shaped state dict in bf16).

    .venv/bin/python benchmarks/prepare.py [--size-mb 1024] [--cast]

Prints the model's size and its largest tensor; the conversion's MB/s (the
converter's own time, after its torch import) and wall time end to end; the
peak resident memory of the converter subprocess, both as it reports it
(VmHWM) and as ru_maxrss of the children seen by a small parent process,
beside the fixed cost of a converter that converts a 64-byte model.

Each part runs in its own process, so no figure inherits the memory of the
process that built the model.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def build(folder: Path, target_mb: int) -> dict:
    """Writes pytorch_model.bin (torch.save of a state dict)."""
    import torch

    hidden, inter, vocab = 2048, 5632, 32000
    state = {"model.embed_tokens.weight": torch.randn(vocab, hidden).to(torch.bfloat16)}
    layer_bytes = (4 * hidden * hidden + 3 * hidden * inter) * 2
    layers = max(1, (target_mb * MB - 2 * vocab * hidden * 2) // layer_bytes)
    for i in range(layers):
        p = f"model.layers.{i}."
        for name, shape in (("self_attn.q_proj", (hidden, hidden)), ("self_attn.k_proj", (hidden, hidden)),
                            ("self_attn.v_proj", (hidden, hidden)), ("self_attn.o_proj", (hidden, hidden)),
                            ("mlp.gate_proj", (inter, hidden)), ("mlp.up_proj", (inter, hidden)),
                            ("mlp.down_proj", (hidden, inter))):
            state[p + name + ".weight"] = torch.randn(*shape).to(torch.bfloat16)
        state[p + "input_layernorm.weight"] = torch.ones(hidden, dtype=torch.bfloat16)
    state["lm_head.weight"] = torch.randn(vocab, hidden).to(torch.bfloat16)
    path = folder / "pytorch_model.bin"
    torch.save(state, path)
    return {"size": path.stat().st_size, "largest": max(t.numel() * t.element_size() for t in state.values()),
            "tensors": len(state)}


def measure(bin_path: Path, out: Path, cast: str | None) -> dict:
    """One conversion through the sandbox; run in a process without torch."""
    sys.path.insert(0, str(ROOT))
    from cfm.preparation.sandbox import run_worker

    out.mkdir()
    started = time.monotonic()
    result = run_worker({"command": "convert", "inputs": [str(bin_path)], "out_dir": str(out),
                         "max_shard_bytes": 5 * 10**9, "cast": cast, "tied": False},
                        work_dir=out.parent, max_memory=8 * 1024**3, time_limit=3600)
    return {"wall": time.monotonic() - started, "result": result,
            "children_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
            "out_bytes": sum(p.stat().st_size for p in out.glob("*.safetensors"))}


def _child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--cast", action="store_true", help="cast F32 to F16 (the model is bf16: no effect)")
    parser.add_argument("--build", help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        print(json.dumps(build(Path(args.build), args.size_mb)))
        return
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]), "F16" if args.cast else None)))
        return

    with tempfile.TemporaryDirectory(prefix="cfm-bench-prepare-") as tmp:
        root = Path(tmp)
        (root / "tiny").mkdir()
        (root / "big").mkdir()
        subprocess.run([sys.executable, "-c", "import torch, sys; torch.save({'w': torch.zeros(4, 4)}, sys.argv[1])",
                        str(root / "tiny" / "pytorch_model.bin")], check=True)
        base = _child("--measure", str(root / "tiny" / "pytorch_model.bin"), str(root / "tiny-out"))
        model = _child("--build", str(root / "big"), "--size-mb", str(args.size_mb))
        flags = ["--cast"] if args.cast else []
        run = _child("--measure", str(root / "big" / "pytorch_model.bin"), str(root / "big-out"), *flags)
        size, largest = model["size"], model["largest"]
        res = run["result"]
        print(f"model: {size / MB:.0f} MiB pytorch_model.bin, {model['tensors']} tensors, "
              f"largest tensor {largest / MB:.0f} MiB")
        print(f"output: {run['out_bytes'] / MB:.0f} MiB safetensors in {len(res['parts'])} file(s)")
        print(f"conversion: {res['convert_seconds']:.2f} s = {size / MB / res['convert_seconds']:.0f} MB/s "
              f"(load + write, after the converter's torch import)")
        print(f"end to end: {run['wall']:.2f} s = {size / MB / run['wall']:.0f} MB/s "
              f"(process start and torch import included; a 64-byte model takes {base['wall']:.2f} s)")
        print(f"peak RSS of the converter subprocess: {res['maxrss_bytes'] / MB:.0f} MiB (VmHWM); "
              f"children ru_maxrss: {run['children_maxrss'] / MB:.0f} MiB")
        print(f"fixed cost (converting a 64-byte model): {base['result']['maxrss_bytes'] / MB:.0f} MiB; "
              f"above it: {(res['maxrss_bytes'] - base['result']['maxrss_bytes']) / MB:.0f} MiB "
              f"vs largest tensor {largest / MB:.0f} MiB and model {size / MB:.0f} MiB")


if __name__ == "__main__":
    main()
