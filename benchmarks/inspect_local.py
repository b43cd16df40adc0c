#!/usr/bin/env python3
"""What a local inspection costs: synthetic Llama 3 8B, 70B and Llama 3.1
405B folders (sparse safetensors shards: real headers, holes for the
weights, as tests/modelfactory.py builds them).

First, side by side with huggingface_hub's `get_local_safetensors_metadata`
(the reference: it reads each shard's 8-byte length and header, as cfm does),
interleaved round by round, the order alternating: in this process (both
warm), and as whole processes (`cfm-inspect FOLDER --json` against a Python
that imports huggingface_hub and calls the function). Medians, the spread
(min-max) and the ratio cfm / reference.

Then, cfm alone:

For each model it prints the wall time, the peak memory (tracemalloc's peak
of Python allocations and the growth of the process's max RSS), the bytes
read (the source's own counter, and the delta of /proc/self/io `rchar`, all
read() bytes, and `read_bytes`, bytes fetched from the disk), next to the
physical minimum: every shard's header with its 8-byte length prefix plus
the small files the engine reads whole (config.json, tokenizer.json, the
index). Each model is inspected cold (its files evicted from the page
cache with posix_fadvise, so read_bytes is real disk traffic) and warm.

    .venv/bin/python benchmarks/inspect_local.py [--rounds 15] [--huge-header] [--no-memory]

--huge-header adds one shard whose header is ~95 MB (700,000 tensors),
the largest the format allows, to show the time and memory it costs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from modelfactory import LLAMA3_8B, LLAMA3_70B, LLAMA31_405B, make_model, write_json  # noqa: E402

from cfm.inspection import InspectOptions, inspect_source  # noqa: E402
from cfm.inspection.limits import InspectLimits  # noqa: E402
from cfm.inspection.sources import open_source  # noqa: E402

MODELS = (("llama-3-8b", LLAMA3_8B, 4), ("llama-3-70b", LLAMA3_70B, 30), ("llama-3.1-405b", LLAMA31_405B, 191))
SMALL_FILES = ("config.json", "tokenizer.json", "model.safetensors.index.json")


def proc_io() -> dict[str, int]:
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return {}
    return {k: int(v) for k, v in (line.split(": ") for line in text.splitlines())}


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def physical_minimum(folder: Path) -> tuple[int, int, int]:
    """(header bytes incl. prefixes, small-file bytes, shards)."""
    headers = shards = 0
    index = folder / "model.safetensors.index.json"
    # With an index, only the shards it names are the model (a trailing empty shard is not read).
    names = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else [
        p.name for p in folder.glob("*.safetensors")]
    for p in (folder / n for n in names):
        with open(p, "rb") as fh:
            headers += 8 + struct.unpack("<Q", fh.read(8))[0]
        shards += 1
    small = sum((folder / n).stat().st_size for n in SMALL_FILES if (folder / n).exists())
    return headers, small, shards


def evict(folder: Path) -> None:
    for p in folder.iterdir():
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def vm_hwm() -> int:
    """Peak resident set of this process image (reset by exec, unlike ru_maxrss after fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(folder: Path, mode: str) -> dict:
    """One inspection in this (fresh) process. mode: cold, warm, or traced
    (tracemalloc on: its bookkeeping slows allocation-heavy work several
    times over, so time is taken from the untraced runs)."""
    if mode == "cold":
        evict(folder)
    limits = InspectLimits()
    rss0, hwm0, io0, cpu0 = maxrss_bytes(), vm_hwm(), proc_io(), time.process_time()
    if mode == "traced":
        tracemalloc.start()
    t0 = time.perf_counter()
    with open_source(str(folder), limits=limits) as source:
        report = inspect_source(source, InspectOptions(limits=limits))
        counted, requests = source.bytes_read, source.requests
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] if mode == "traced" else None
    io1 = proc_io()
    r = report.to_dict()
    return {"wall_s": wall, "cpu_s": time.process_time() - cpu0, "tracemalloc_peak": peak,
            "maxrss_delta": maxrss_bytes() - rss0, "hwm_delta": vm_hwm() - hwm0, "bytes_read": counted,
            "requests": requests, "rchar": io1.get("rchar", 0) - io0.get("rchar", 0),
            "read_bytes": io1.get("read_bytes", 0) - io0.get("read_bytes", 0),
            "parameters": r["parameters"], "configuration": r["configuration"], "deployable": r["deployable"]}


def measure_in_child(folder: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--measure", str(folder), mode], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def huge_header_folder(base: Path) -> Path:
    folder = base / "huge-header"
    folder.mkdir()
    write_json(folder / "config.json", {"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    write_json(folder / "tokenizer.json", {"version": "1.0"})
    hdr: dict = {"__metadata__": {"format": "pt"}}
    for i in range(700_000):
        hdr[f"model.layers.{i}.mlp.experts.gate_up_proj.weight_{i:07d}"] = {
            "dtype": "BF16", "shape": [1, 1], "data_offsets": [2 * i, 2 * i + 2]}
    raw = json.dumps(hdr, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    assert len(raw) <= 100_000_000
    with open(folder / "model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
    os.truncate(folder / "model.safetensors", 8 + len(raw) + 2 * 700_000)
    return folder


CFM_PROCESS = "import sys; from cfm.inspection.cli import main; sys.exit(main())"
REF_PROCESS = ("import sys; from huggingface_hub import get_local_safetensors_metadata; "
               "get_local_safetensors_metadata(sys.argv[1])")


def side_by_side(folders: list[tuple[str, Path, float]], rounds: int) -> None:
    from huggingface_hub import get_local_safetensors_metadata

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    limits = InspectLimits()

    def cfm_in(folder: Path) -> None:
        with open_source(str(folder), limits=limits) as source:
            inspect_source(source, InspectOptions(limits=limits))

    def proc(code: str, *args: str) -> None:
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{args} failed: {done.stderr[-2000:]}")

    print(f"{'model':<22} {'run':<40} {'median':>9} {'spread':>19} {'ratio':>6}")
    for name, folder, _built in folders:
        cfm_in(folder)  # warm: imports, page cache
        get_local_safetensors_metadata(folder)
        steps = {"cfm_in": lambda f=folder: cfm_in(f), "ref_in": lambda f=folder: get_local_safetensors_metadata(f),
                 "cfm_proc": lambda f=folder: proc(CFM_PROCESS, str(f), "--json"),
                 "ref_proc": lambda f=folder: proc(REF_PROCESS, str(f))}
        times: dict[str, list[float]] = {k: [] for k in steps}
        for i in range(rounds):
            order = list(steps) if i % 2 == 0 else ["ref_in", "cfm_in", "ref_proc", "cfm_proc"]
            for key in order:
                t0 = time.perf_counter()
                steps[key]()
                times[key].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        label = name
        for key, title, ref in (("cfm_in", "cfm inspect_source, in-process", "ref_in"),
                                ("ref_in", "get_local_safetensors_metadata, in-proc", None),
                                ("cfm_proc", "cfm-inspect --json, whole process", "ref_proc"),
                                ("ref_proc", "get_local_safetensors_metadata, process", None)):
            ratio = f"{med[key] / med[ref]:.2f}" if ref else ""
            print(f"{label:<22} {title:<40} {med[key] * 1000:>7.1f}ms {min(times[key]) * 1000:>8.1f}-"
                  f"{max(times[key]) * 1000:<8.1f}ms {ratio:>6}")
            label = ""
    print()


def mb(n: int) -> str:
    return f"{n / 1e6:,.2f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--huge-header", action="store_true", help="also inspect a ~95 MB header")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of the side-by-side runs (default 15)")
    parser.add_argument("--no-memory", action="store_true", help="only the side-by-side comparison")
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return 0
    with tempfile.TemporaryDirectory(prefix="cfm-bench-") as tmp:
        base = Path(tmp)
        folders = []
        for name, cfg, shards in MODELS:
            t0 = time.perf_counter()
            make_model(base / name, cfg, shards=shards)
            folders.append((name, base / name, time.perf_counter() - t0))
        if args.huge_header:
            t0 = time.perf_counter()
            folders.append(("huge-header (700k tensors)", huge_header_folder(base), time.perf_counter() - t0))
        print(f"cfm local inspection benchmark (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}), {args.rounds} rounds side by side\n")
        side_by_side([f for f in folders if not f[0].startswith("huge")], args.rounds)
        if args.no_memory:
            return 0
        print("cfm alone, each run in a fresh process\n")
        for name, folder, built in folders:
            headers, small, shards = physical_minimum(folder)
            logical = sum(p.stat().st_size for p in folder.iterdir())
            print(f"{name}: {shards} shard(s), {mb(logical)} logical size (sparse; built in {built:.2f} s)")
            print(f"  physical minimum: {headers:,} header bytes (incl. 8-byte prefixes) + {small:,} small-file "
                  f"bytes = {headers + small:,}")
            huge = name.startswith("huge")
            # tracemalloc makes the 700k-tensor parse take minutes: VmHWM stands for it there.
            for mode in ("cold", "warm") if huge else ("cold", "warm", "traced"):
                m = measure_in_child(folder, mode)
                if mode == "traced":
                    print(f"  traced: tracemalloc peak {mb(m['tracemalloc_peak'])} (wall {m['wall_s']:.2f} s "
                          f"under tracemalloc)")
                    continue
                print(f"  {mode}: wall {m['wall_s'] * 1000:8.1f} ms  cpu {m['cpu_s'] * 1000:8.1f} ms   "
                      f"ru_maxrss +{mb(m['maxrss_delta'])}  VmHWM +{mb(m['hwm_delta'])}")
                print(f"        bytes_read {m['bytes_read']:,} in {m['requests']} reads "
                      f"({m['bytes_read'] / (headers + small):.3f}x the minimum)   "
                      f"/proc/self/io rchar +{m['rchar']:,}  read_bytes +{m['read_bytes']:,}")
            print(f"  report: parameters {m['parameters']:,}  configuration {m['configuration']}  "
                  f"deployable {m['deployable']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
