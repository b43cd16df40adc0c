"""Inspecting a Hub repo: cfm beside huggingface_hub's `get_safetensors_metadata`,
side by side in one run.

Builds sparse Llama 3 8B (1 file), 70B (30 shards) and 3.1 405B (191 shards)
repos, serves them from the local Hub of tests/hubserver.py with a latency
per request (50 ms by default, a transatlantic round trip), and for each repo
runs, interleaved round by round (the order alternating):

- `cfm-inspect REPO --json`, a whole process (what a user or a CI job runs),
  and `get_safetensors_metadata(REPO)` in a process of its own (a fresh HF_HOME:
  no cached index);
- the same two in this process, already warm (imports done, client made).

It prints the median wall time, the spread (min-max) and the ratio cfm /
reference, and what the Hub saw per run: requests (redirects included),
body bytes and TCP connections opened, beside the
physical minimum (each shard's header with its 8-byte prefix, plus the
small files cfm reads whole).

    .venv/bin/python benchmarks/inspect_hub.py [--latency 0.05] [--rounds 7]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
for _name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
    os.environ.pop(_name, None)

from hubserver import HubServer  # noqa: E402
from modelfactory import LLAMA3_8B, LLAMA3_70B, LLAMA31_405B, make_model  # noqa: E402

MODELS = [("llama-3-8b", LLAMA3_8B, 1), ("llama-3-70b", LLAMA3_70B, 30), ("llama-3.1-405b", LLAMA31_405B, 191)]
SMALL_FILES = ("config.json", "tokenizer.json", "model.safetensors.index.json")

#: what the `cfm-inspect` console script runs (its entry point), in a fresh interpreter
CFM_PROCESS = "import sys; from cfm.inspection.cli import main; sys.exit(main())"
REF_PROCESS = "import sys; from huggingface_hub import get_safetensors_metadata; get_safetensors_metadata(sys.argv[1])"


def physical_minimum(folder: Path) -> int:
    """Each shard's header with its 8-byte length, plus the small files read whole."""
    total = 0
    for shard in sorted(folder.glob("*.safetensors")):
        with open(shard, "rb") as fh:
            total += 8 + struct.unpack("<Q", fh.read(8))[0]
    return total + sum((folder / n).stat().st_size for n in SMALL_FILES if (folder / n).exists())


def run_once(hub: HubServer, fn) -> dict:
    hub.reset_counters()
    started = time.perf_counter()
    fn()
    wall = time.perf_counter() - started
    hub.wait_idle()
    return {"wall": wall, "requests": hub.requests, "bytes": hub.bytes_sent, "connections": hub.connections}


def process(code: str, *args: str, env: dict) -> None:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{code[:40]}... {args} failed ({proc.returncode}): {proc.stderr[-2000:]}")


def summarize(runs: list[dict]) -> dict:
    walls = sorted(r["wall"] for r in runs)
    last = runs[-1]
    return {"median": statistics.median(walls), "min": walls[0], "max": walls[-1], **{k: last[k] for k in (
        "requests", "bytes", "connections")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every request (default 0.05)")
    parser.add_argument("--rounds", type=int, default=7, help="runs of each tool per repo (default 7)")
    parser.add_argument("--models", default="8b,70b,405b", help="which repos (default 8b,70b,405b)")
    args = parser.parse_args()
    wanted = [m for m in MODELS if any(m[0].endswith("-" + w) for w in args.models.split(","))]

    with tempfile.TemporaryDirectory(prefix="cfm-bench-hub-") as tmp, HubServer(latency=args.latency) as hub:
        tmp = Path(tmp)
        os.environ["HF_ENDPOINT"] = hub.url
        os.environ["HF_HOME"] = str(tmp / "hf-home")
        # imported after HF_ENDPOINT/HF_HOME are set: huggingface_hub reads them at import
        from huggingface_hub import HfApi

        from cfm.inspection import inspect

        minimum = {}
        for name, cfg, shards in wanted:
            folder = make_model(tmp / name, cfg, shards=shards)
            hub.add_repo(f"bench/{name}", folder)
            minimum[name] = physical_minimum(folder)
        api = HfApi(endpoint=hub.url, token=False)
        first = f"bench/{wanted[0][0]}"
        inspect(first)  # warm both in-process clients (imports, first connection)
        api.get_safetensors_metadata(first)
        hub.reset_counters()
        inspect(first)
        print("cfm on " + wanted[0][0] + " asks for: " + ", ".join(
            f"{e['method']} {e['path'].split('?')[0].rsplit('/', 1)[-1]} {e['range'] or ''} {e['status']}".replace(
                "  ", " ") for e in hub.log))
        print(f"local Hub at {hub.url}, {args.latency * 1000:.0f} ms per request, {args.rounds} rounds, "
              f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        head = (f"{'repo':<24} {'run':<34} {'median':>8} {'spread':>15} {'ratio':>6} {'requests':>9} "
                f"{'bytes':>11} {'x min':>6} {'conns':>6}")
        print(head)
        print("-" * len(head))
        results = {}
        for name, _cfg, shards in wanted:
            repo = f"bench/{name}"
            runs: dict[str, list[dict]] = {"cfm_proc": [], "ref_proc": [], "cfm_in": [], "ref_in": []}
            for i in range(args.rounds):
                def ref_proc(i=i, repo=repo, name=name):
                    process(REF_PROCESS, repo, env={**env, "HF_HOME": str(tmp / f"hf-{name}-{i}")})
                steps = [("cfm_proc", lambda: process(CFM_PROCESS, repo, "--json", env=env)),  # noqa: B023
                         ("ref_proc", ref_proc),
                         ("cfm_in", lambda: inspect(repo)),  # noqa: B023
                         ("ref_in", lambda: api.get_safetensors_metadata(repo))]  # noqa: B023
                if i % 2:
                    steps = [steps[1], steps[0], steps[3], steps[2]]
                for key, fn in steps:
                    runs[key].append(run_once(hub, fn))
            s = {k: summarize(v) for k, v in runs.items()}
            results[name] = s
            label = f"{name} ({shards} shard{'s' if shards > 1 else ''})"
            rows = [("cfm-inspect, whole process", "cfm_proc", "ref_proc"),
                    ("get_safetensors_metadata, process", "ref_proc", None),
                    ("cfm inspect(), in-process", "cfm_in", "ref_in"),
                    ("get_safetensors_metadata, in-proc", "ref_in", None)]
            for title, key, ref in rows:
                r = s[key]
                ratio = f"{r['median'] / s[ref]['median']:.2f}" if ref else ""
                print(f"{label:<24} {title:<34} {r['median'] * 1000:>6.0f}ms {r['min'] * 1000:>6.0f}-"
                      f"{r['max'] * 1000:<6.0f}ms {ratio:>6} {r['requests']:>9} {r['bytes']:>11,} "
                      f"{r['bytes'] / minimum[name]:>6.2f} {r['connections']:>6}")
                label = ""
            print(f"{'':<24} physical minimum {minimum[name]:,} bytes (headers + config, tokenizer, index)\n")
        if os.environ.get("CFM_BENCH_JSON"):
            Path(os.environ["CFM_BENCH_JSON"]).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
