"""`files_bytes` (beyond the contract): the weight files' sizes as the
source lists them, so a `.bin`-only model has a size although its pickles
are never opened; and `files.needed_bytes`, what Prepare would download.
Neither costs a byte read nor a request: the listing already holds them."""
from __future__ import annotations

import tarfile

from inspect_support import folder, llama_cfg, real_safetensors, run
from modelfactory import write_json

from cfm.inspection import inspect

GB = 10**9


def _sparse(path, size):
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def _bin_only(path):
    model = folder(path, llama_cfg(), tokenizer=False)
    write_json(model / "pytorch_model.bin.index.json", {"weight_map": {"a": "pytorch_model-00001-of-00002.bin"}})
    _sparse(model / "pytorch_model-00001-of-00002.bin", 9 * GB)
    _sparse(model / "pytorch_model-00002-of-00002.bin", 7 * GB + 100_000_000)
    (model / "training_args.bin").write_bytes(b"x" * 1000)  # a trainer's leftover: not the weights
    (model / "tokenizer.model").write_bytes(b"t" * 500)
    (model / "README.md").write_bytes(b"r" * 300)
    return model


def test_a_bin_only_folder_gets_its_size_from_the_listing_without_reading_the_pickles(tmp_path):
    model = _bin_only(tmp_path / "bin")
    d = run(model)
    assert d["weight_bytes"] is None and d["serving_bytes"] is None  # as the contract says
    assert d["parameters_exact"] is False
    assert d["files_bytes"] == 16_100_000_000
    assert d["files_bytes_by_format"] == {"bin": 16_100_000_000}  # not the trainer's training_args.bin
    small = sum((model / n).stat().st_size for n in ("config.json", "pytorch_model.bin.index.json", "tokenizer.model"))
    # Prepare downloads the pickles, their index, config and tokenizer; not README nor training_args.bin
    assert d["files"]["needed_bytes"] == 16_100_000_000 + small
    # no byte of a weights file was read: only small files, far under one pickle
    assert d["files"]["bytes_read"] <= small + (model / "config.json").stat().st_size


def test_safetensors_shards_count_and_other_formats_are_listed_per_format(tmp_path):
    model = folder(tmp_path / "st", llama_cfg())
    real_safetensors(model / "model.safetensors")
    (model / "model.Q4_K_M.gguf").write_bytes(b"g" * 4000)
    (model / "pytorch_model.bin").write_bytes(b"b" * 3000)
    d = run(model)
    shard = (model / "model.safetensors").stat().st_size
    assert d["files_bytes"] == shard
    assert d["files_bytes_by_format"] == {"bin": 3000, "gguf": 4000, "safetensors": shard}
    # Prepare keeps the safetensors: neither the .bin nor the .gguf is downloaded
    assert d["files"]["needed_bytes"] == shard + sum(
        (model / n).stat().st_size for n in ("config.json", "tokenizer.json"))


def test_no_weights_gives_null(tmp_path):
    d = run(folder(tmp_path / "none", llama_cfg()))
    assert d["files_bytes"] is None and d["files_bytes_by_format"] == {}


def test_an_index_naming_missing_shards_gives_no_size(tmp_path):
    model = folder(tmp_path / "inc", llama_cfg(), name="model-00001-of-00002.safetensors")
    write_json(model / "model.safetensors.index.json", {"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})
    assert run(model)["files_bytes"] is None


def test_an_archive_gives_its_members_sizes(tmp_path):
    model = folder(tmp_path / "arc", llama_cfg(), tokenizer=False)
    (model / "pytorch_model.bin").write_bytes(b"\0" * 5_000_000)
    archive = tmp_path / "model.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(model, arcname="model")
    d = run(archive)
    assert d["files_bytes"] == 5_000_000 and d["files_bytes_by_format"] == {"bin": 5_000_000}
    assert d["files"]["bytes_read"] < 100_000


def test_the_hub_listing_gives_the_size_in_the_same_requests(hub_server, tmp_path):
    model = _bin_only(tmp_path / "hubbin")
    hub_server.add_repo("org/binonly", model)
    hub_server.reset_counters()
    d = inspect("org/binonly").to_dict()
    hub_server.wait_idle()
    assert d["files_bytes"] == 16_100_000_000
    assert d["files_bytes_by_format"] == {"bin": 16_100_000_000}
    # the model info (with its file list), then config.json, the index and tokenizer.model: nothing more
    weights = [e for e in hub_server.log if ".bin" in e["path"] and not e["path"].endswith(".json")]
    assert weights == []
    assert hub_server.bytes_sent < 100_000


def test_the_readable_summary_gives_the_listed_size(tmp_path):
    from cfm.inspection.cli import summary

    d = run(_bin_only(tmp_path / "cli"))
    assert "weights        - stored, - served   (16.10 GB of .bin files, size from the file list)" in summary(d)
