"""What an inspection costs the Hub, counted by the test Hub itself: at most
8 connections whatever the shard count (kept alive and reused: a header read
does not drop its connection), bytes within twice the physical minimum (the
headers and the small files read whole), and no round trip wasted."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from modelfactory import LLAMA3_8B, LLAMA3_70B, LLAMA31_405B, make_model, make_tiny_real

from cfm.inspection import InspectLimits, InspectOptions, inspect, inspect_source
from cfm.inspection.hub import PARALLELISM, open_hub

SMALL_FILES = ("config.json", "tokenizer.json", "model.safetensors.index.json")


def physical_minimum(folder: Path) -> int:
    total = 0
    for shard in folder.glob("*.safetensors"):
        with open(shard, "rb") as fh:
            total += 8 + struct.unpack("<Q", fh.read(8))[0]
    return total + sum((folder / n).stat().st_size for n in SMALL_FILES if (folder / n).exists())


@pytest.fixture(scope="module")
def big_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub-costs")
    return {"8b": make_model(root / "8b", LLAMA3_8B, shards=1), "70b": make_model(root / "70b", LLAMA3_70B, shards=30),
            "405b": make_model(root / "405b", LLAMA31_405B, shards=191)}


@pytest.mark.parametrize("name, shards", [("8b", 1), ("70b", 30), ("405b", 191)])
def test_connections_and_bytes_are_bounded_whatever_the_shard_count(hub_server, big_models, name, shards):
    hub_server.add_repo(f"org/{name}", big_models[name])
    hub_server.reset_counters()
    report = inspect(f"org/{name}").to_dict()
    hub_server.wait_idle()
    assert report["parameters_exact"] and report["parameters"] > 8e9
    assert hub_server.connections <= PARALLELISM == 8, hub_server.connections
    # Every shard needs its own first read (and its redirect to the CDN): reuse is what keeps this at 8.
    assert hub_server.requests >= 2 * shards > hub_server.connections or shards == 1
    minimum = physical_minimum(big_models[name])
    assert hub_server.bytes_sent <= 2 * minimum, (hub_server.bytes_sent, minimum)
    # no file listing beyond the one model-info call, no file read twice from its start
    starts = [(e["path"], e["range"]) for e in hub_server.log if e["status"] in (200, 206)
              and "/__cdn/" in e["path"] and (e["range"] or "").startswith("bytes=0-")]
    index = big_models[name] / "model.safetensors.index.json"
    named = len(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else 1
    assert len(starts) == len(set(starts)) == named


def test_the_rest_of_a_long_header_goes_straight_to_the_cdn(hub_server, tmp_path):
    """A header longer than the first range: one more exact range, at the
    address the first was redirected to (one round trip, not two)."""
    from modelfactory import llama_config

    cfg = llama_config(hidden=64, layers=40, heads=4, kv_heads=2, intermediate=128, vocab=256)
    wide = make_model(tmp_path / "wide", cfg, {f"layer.{i}.weight": ("BF16", [64, 64]) for i in range(2000)})
    hub_server.add_repo("org/wide", wide)
    hub_server.reset_counters()
    assert inspect("org/wide").to_dict()["parameters_exact"]
    with open(wide / "model.safetensors", "rb") as fh:
        end = 8 + struct.unpack("<Q", fh.read(8))[0]
    ranges = [e for e in hub_server.log if e["range"]]
    first, rest = ranges[0], ranges[-1]
    assert first["status"] == 302 and "/resolve/" in first["path"]
    assert rest["status"] == 206 and "/__cdn/" in rest["path"] and rest["range"].endswith(f"-{end - 1}")
    assert len(ranges) == 3  # the redirect, the first range, the exact rest
    assert hub_server.connections <= 8


def test_small_files_and_a_single_header_are_fetched_together(hub_server, big_models):
    """config.json, tokenizer.json and the first range of a single-file model's
    header are in flight at once: the inspection takes ~3 round trips, not 5."""
    hub_server.add_repo("org/8b", big_models["8b"])
    hub_server.latency = 0.2
    import time

    started = time.perf_counter()
    inspect("org/8b")
    elapsed = time.perf_counter() - started
    hub_server.latency = 0
    # model info, then (config | tokenizer | redirect + first range): 3 x 0.2 s; one after another it was 5
    assert elapsed < 4 * 0.2 + 0.15, elapsed


def test_a_file_over_its_cap_is_never_fetched_ahead(hub_server, tmp_path):
    """Reading ahead fetches only what the checks will read: a tokenizer.json
    over CFM_MAX_SMALL_FILE_BYTES is refused by its listed size, unread."""
    model = make_tiny_real(tmp_path / "tiny")
    (model / "tokenizer.json").write_text('{"version": "1.0", "pad": "' + "x" * 300_000 + '"}')
    hub_server.add_repo("org/tiny", model)
    limits = InspectLimits(max_small_file_bytes=100_000)
    with open_hub("org/tiny", limits=limits) as source:
        report = inspect_source(source, InspectOptions(limits=limits)).to_dict()
    hub_server.wait_idle()
    tokenizer = next(c for c in report["checks"] if c["id"] == "tokenizer")
    assert tokenizer["status"] == "fail"
    assert not any(e["path"].endswith("/tokenizer.json") for e in hub_server.log)
    assert hub_server.bytes_sent < 100_000
