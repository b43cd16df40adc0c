"""What inspecting a Hub repo costs: bytes pulled, requests and wall time.

Builds sparse Llama 3 8B (1 file), 70B (30 shards) and 3.1 405B (191 shards)
repos, serves them from the local Hub of tests/hubserver.py with a simulated
latency per request (50 ms by default, a transatlantic round trip), and
inspects each with cfm's engine, beside huggingface_hub's own
`get_safetensors_metadata` on the same repo. Bytes and requests are counted
on the server side (file bytes sent, every request including redirects).

    .venv/bin/python benchmarks/inspect_hub.py [--latency 0.05]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("HF_TOKEN", None)

from hubserver import HubServer  # noqa: E402
from modelfactory import LLAMA3_8B, LLAMA3_70B, LLAMA31_405B, make_model  # noqa: E402

MODELS = [("llama-3-8b", LLAMA3_8B, 1), ("llama-3-70b", LLAMA3_70B, 30), ("llama-3.1-405b", LLAMA31_405B, 191)]


def measure(hub: HubServer, fn) -> tuple[int, int, float]:
    hub.reset_counters()
    started = time.perf_counter()
    fn()
    return hub.bytes_sent, hub.requests, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every request (default 0.05)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cfm-bench-hub-") as tmp, HubServer(latency=args.latency) as hub:
        tmp = Path(tmp)
        os.environ["HF_ENDPOINT"] = hub.url
        os.environ["HF_HOME"] = str(tmp / "hf-home")
        # imported after HF_ENDPOINT/HF_HOME are set: huggingface_hub reads them at import
        from huggingface_hub import HfApi

        from cfm.inspection import inspect

        for name, cfg, shards in MODELS:
            hub.add_repo(f"bench/{name}", make_model(tmp / name, cfg, shards=shards))
        # warm up both clients (imports, first connection): the table shows steady-state costs
        inspect("bench/llama-3-8b")
        HfApi(endpoint=hub.url, token=False).get_safetensors_metadata("bench/llama-3-8b")
        hub.reset_counters()
        inspect("bench/llama-3-8b")
        print("cfm on llama-3-8b asks for: " + ", ".join(
            f"{e['method']} {e['path'].split('?')[0].rsplit('/', 1)[-1]} {e['status']}" for e in hub.log))
        print(f"local Hub at {hub.url}, {args.latency * 1000:.0f} ms per request\n")
        print(f"{'repo':<28} {'tool':<30} {'bytes pulled':>13} {'requests':>9} {'wall time':>10}")
        for name, _cfg, shards in MODELS:
            repo = f"bench/{name}"
            report = {}
            cfm = measure(hub, lambda: report.update(inspect(repo).to_dict()))  # noqa: B023
            api = HfApi(endpoint=hub.url, token=False)
            os.environ["HF_HOME"] = str(tmp / f"hf-home-{name}")  # a cold cache, as a fresh worker has
            ref = measure(hub, lambda: api.get_safetensors_metadata(repo))  # noqa: B023
            label = f"{name} ({shards} shard{'s' if shards > 1 else ''})"
            for tool, (nbytes, reqs, secs) in (("cfm inspect (full report)", cfm),
                                               ("hf get_safetensors_metadata", ref)):
                print(f"{label:<28} {tool:<30} {nbytes:>13,} {reqs:>9} {secs:>9.2f}s")
                label = ""
            print(f"{'':<28} parameters {report['parameters']:,}, weights {report['weight_bytes'] / 1e9:.0f} GB "
                  f"never pulled\n")


if __name__ == "__main__":
    main()
