"""Hostile config.json, tokenizer.json, index and folder layouts: a clear
failed check every time, in bounded time, never an exception."""
from __future__ import annotations

import json
import os
import time

import pytest
from inspect_support import check, folder, llama_cfg, real_safetensors, run, statuses
from modelfactory import write_json, write_sharded


def _model(tmp_path, cfg=None):
    path = folder(tmp_path / "m", llama_cfg() if cfg is None else cfg)
    real_safetensors(path / "model.safetensors")
    return path


def test_100mb_sparse_config_is_refused_unread(tmp_path):
    path = _model(tmp_path)
    with open(path / "config.json", "r+b") as fh:
        fh.truncate(100 * 1024 * 1024)
    d = run(path)
    c = check(d, "config_valid")
    assert c["status"] == "fail" and "over the cap" in c["message"] and str(100 * 1024 * 1024) in c["message"]
    assert d["files"]["bytes_read"] < 1_000_000


@pytest.mark.parametrize("opener, closer", [(b"[", b"]"), (b'{"a":', b"}")])
def test_config_nested_100000_deep_fails_quickly(tmp_path, opener, closer):
    path = _model(tmp_path)
    (path / "config.json").write_bytes(opener * 100_000 + b"1" + closer * 100_000)
    t0 = time.monotonic()
    c = check(run(path), "config_valid")
    assert time.monotonic() - t0 < 5
    assert c["status"] == "fail" and "deep" in c["message"]


def test_config_nested_just_past_the_depth_cap_fails(tmp_path):
    path = _model(tmp_path)
    inner = json.dumps(llama_cfg())
    (path / "config.json").write_text(inner[:-1] + ', "x": ' + "[" * 250 + "]" * 250 + "}")
    assert check(run(path), "config_valid")["status"] == "fail"


@pytest.mark.parametrize("text", [
    '{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": NaN}',
    '{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "x": Infinity, "y": -Infinity}',
    '{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "rope_scaling": '
    '{"rope_type": "llama3", "factor": Infinity}}',
    '{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "rope_scaling": '
    '{"rope_type": "llama3", "factor": NaN}}',
    '{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "rope_scaling": '
    '{"rope_type": "llama3", "factor": 1e999}}',
])
def test_nan_and_infinity_never_reach_the_report(tmp_path, text):
    """The report must stay strict JSON (run() asserts allow_nan=False)."""
    path = _model(tmp_path)
    (path / "config.json").write_text(text)
    d = run(path)
    assert check(d, "config_present")["status"] == "pass"


def test_huge_integers_in_config(tmp_path):
    path = _model(tmp_path)
    big = "9" * 4000
    (path / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"], '
                                      f'"hidden_size": {big}, "num_hidden_layers": {big}, "vocab_size": {big}, '
                                      f'"rope_scaling": {{"rope_type": "llama3", "factor": {big}}}}}')
    d = run(path)
    assert check(d, "known_issues")["status"] == "warn"
    (path / "config.json").write_text('{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}")
    assert check(run(path), "config_valid")["status"] == "fail"


@pytest.mark.parametrize("cfg", [
    {"model_type": "llama", "architectures": "LlamaForCausalLM"},
    {"model_type": "llama", "architectures": [None, 5, {"a": 1}]},
    {"model_type": "llama", "architectures": []},
    {"model_type": "llama", "auto_map": ["a", "b"]},
    {"model_type": "llama", "auto_map": "x"},
    {"model_type": "llama", "quantization_config": "gptq"},
    {"model_type": "llama", "quantization_config": {"quant_method": ["gptq"]}},
    {"model_type": "llama", "quantization_config": {"quant_method": "gptq", "bits": "four"}},
    {"model_type": "llama", "quantization_config": {"quant_method": "gptq", "bits": 0}},
    {"model_type": "llama", "rope_scaling": {"rope_type": ["llama3"]}},
    {"model_type": "llama", "text_config": "x", "num_hidden_layers": {"a": 1}},
    {"model_type": "llama", "hidden_size": -1, "num_hidden_layers": 1e9, "vocab_size": True},
    {"model_type": "x" * 3_000_000},
    {"model_type": "llama\u0000\u202e"},
])
def test_odd_config_values_are_handled(tmp_path, cfg):
    d = run(_model(tmp_path, cfg))
    assert check(d, "config_valid")["status"] == "pass"
    assert all(len(c["message"]) < 2000 for c in d["checks"])


def test_long_model_type_is_cut_in_messages_not_repeated(tmp_path):
    d = run(_model(tmp_path, {"model_type": "q" * 3_000_000, "architectures": ["QForCausalLM"]}))
    assert check(d, "architecture")["status"] == "fail"
    assert len(json.dumps(d)) < 3_500_000  # the value once in model_type, not in every message


# -- tokenizer.json ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"{", b"[[[", b"\x00\x01", b"null", b"[" * 100_000])
def test_invalid_tokenizer_json_fails(tmp_path, content):
    path = _model(tmp_path)
    (path / "tokenizer.json").write_bytes(content)
    c = check(run(path), "tokenizer")
    assert c["status"] == "fail" and "tokenizer.json" in c["message"]


def test_huge_sparse_tokenizer_json_is_refused_unread(tmp_path):
    path = _model(tmp_path)
    with open(path / "tokenizer.json", "r+b") as fh:
        fh.truncate(200 * 1024 * 1024)
    d = run(path)
    c = check(d, "tokenizer")
    assert c["status"] == "fail" and "over the cap" in c["message"]
    assert d["files"]["bytes_read"] < 1_000_000


# -- the index ------------------------------------------------------------------------------------------------
def _sharded(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    files = write_sharded(path, {f"w{i}": ("BF16", [4, 4]) for i in range(4)}, 2)
    return path, files


@pytest.mark.parametrize("weight_map", [[], "x", None, 5, {"w0": None}, {"w0": ["a"]}, {}])
def test_index_weight_map_that_is_not_a_map_of_names_fails(tmp_path, weight_map):
    path, files = _sharded(tmp_path)
    write_json(path / "model.safetensors.index.json", {"weight_map": weight_map})
    d = run(path)
    assert check(d, "safetensors_index")["status"] == "fail"
    assert d["deployable"] is False


@pytest.mark.parametrize("shard", ["../model-00001-of-00002.safetensors", "/etc/passwd", "sub/x.safetensors",
                                   "../../../../etc/shadow", "model-00003-of-00002.safetensors"])
def test_index_naming_a_shard_outside_the_folder_fails_unread(tmp_path, shard):
    path, files = _sharded(tmp_path)
    (path / "sub").mkdir()
    (path / "sub" / "x.safetensors").write_bytes((path / files[0]).read_bytes())
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"outside")
    idx = json.loads((path / "model.safetensors.index.json").read_text())
    idx["weight_map"]["w0"] = shard
    write_json(path / "model.safetensors.index.json", idx)
    d = run(path)
    c = check(d, "safetensors_index")
    assert c["status"] == "fail" and shard[:20] in c["message"]


def test_index_nested_100000_deep_fails(tmp_path):
    path, files = _sharded(tmp_path)
    (path / "model.safetensors.index.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    assert check(run(path), "safetensors_index")["status"] == "fail"


# -- the folder itself ------------------------------------------------------------------------------------------
def test_symlink_loops_are_skipped(tmp_path):
    path = _model(tmp_path)
    os.symlink("loop_b", path / "loop_a")
    os.symlink("loop_a", path / "loop_b")
    os.symlink(".", path / "self")
    os.symlink(path, path / "parent_loop")
    d = run(path)
    assert d["deployable"] is True and d["files"]["count"] == 3


def test_config_json_that_is_a_fifo_does_not_hang(tmp_path):
    path = _model(tmp_path)
    (path / "config.json").unlink()
    os.mkfifo(path / "config.json")
    t0 = time.monotonic()
    d = run(path)
    assert time.monotonic() - t0 < 5
    assert check(d, "config_present")["status"] == "fail"


def test_weights_that_link_to_a_device_are_not_read(tmp_path):
    path = _model(tmp_path)
    (path / "model.safetensors").unlink()
    os.symlink("/dev/zero", path / "model.safetensors")
    os.symlink("/dev/urandom", path / "tokenizer.json.tmp")
    d = run(path)
    assert check(d, "weights_format")["status"] == "fail"


def test_symlinked_files_are_followed_like_a_hub_cache_snapshot(tmp_path):
    blobs = tmp_path / "blobs"
    real = _model(blobs)
    snap = tmp_path / "snapshot"
    snap.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        os.symlink(real / name, snap / name)
    d = run(snap)
    assert d["deployable"] is True and d["parameters"] == 36


def test_hidden_folders_are_not_walked(tmp_path):
    path = _model(tmp_path)
    for i in range(50):
        (path / ".git" / f"obj{i}").mkdir(parents=True)
    assert run(path)["files"]["count"] == 3


def test_too_many_files_is_a_source_error(tmp_path):
    from cfm.inspection import InspectLimits, SourceError
    path = _model(tmp_path)
    for i in range(30):
        (path / f"f{i}.txt").write_text("x")
    with pytest.raises(SourceError):
        run(path, limits=InspectLimits(max_files=20))
    assert statuses(run(path))["config_present"] == "pass"


@pytest.mark.parametrize("text", [
    '{"model_type": "llama\\ud800", "architectures": ["Llama\\udfff"]}',
    '{"model_type": "ll\\u0000ama", "architectures": ["\\u0000"]}',
    '{"model_type": "llama", "auto_map": {"\\ud83d": "x", "AutoModel\\u0000": "y"}}',
])
def test_lone_surrogates_and_nul_never_reach_the_report(tmp_path, text):
    """They would make the command's UTF-8 output (and PostgreSQL's jsonb) fail."""
    path = _model(tmp_path)
    (path / "config.json").write_text(text)
    run(path)  # assert_contract encodes the report as UTF-8 and looks for U+0000


def test_surrogate_in_a_tensor_name_of_a_bad_header(tmp_path):
    from inspect_support import raw_header_file
    path = _model(tmp_path)
    raw_header_file(path / "model.safetensors",
                    b'{"\\ud800\\u0000": {"dtype": "X9", "shape": [1], "data_offsets": [0, 1]}}', 1)
    assert check(run(path), "safetensors_header")["status"] == "fail"


def test_a_folder_nested_thousands_deep_is_listed_without_recursion(tmp_path):
    path = _model(tmp_path)
    depth = 1200  # past Python's recursion limit, which os.walk in 3.11 would hit
    cwd = os.getcwd()
    try:
        os.chdir(path)
        for _ in range(depth):
            os.mkdir("d")
            os.chdir("d")
        open("deep.bin", "wb").close()
        os.chdir(cwd)
        d = run(path)
        assert d["deployable"] is True and d["files"]["count"] == 3
    finally:
        os.chdir(path)
        for _ in range(depth):  # shutil.rmtree recurses too: unwind by hand
            os.chdir("d")
        for _ in range(depth):
            for name in os.listdir("."):
                os.remove(name)
            os.chdir("..")
            os.rmdir("d")
        os.chdir(cwd)


def test_files_in_ordinary_subfolders_are_listed(tmp_path):
    path = _model(tmp_path)
    write_json(path / "onnx" / "config.json", {"x": 1})
    os.symlink(tmp_path, path / "linked_dir")
    d = run(path)
    assert d["files"]["count"] == 4 and check(d, "config_valid")["status"] == "pass"


def test_index_of_100k_unknown_tensors_fails_quickly(tmp_path):
    path, files = _sharded(tmp_path)
    idx = json.loads((path / "model.safetensors.index.json").read_text())
    idx["weight_map"].update({f"ghost.{i}": files[i % 2] for i in range(100_000)})
    write_json(path / "model.safetensors.index.json", idx)
    t0 = time.monotonic()
    c = check(run(path), "safetensors_index")
    assert time.monotonic() - t0 < 10
    assert c["status"] == "fail" and "ghost." in c["message"]


def test_file_names_that_are_not_utf8(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    (path / os.fsdecode(b"weights\xff\xfe.bin")).write_bytes(b"x")
    d = run(path)
    c = check(d, "weights_format")
    assert c["status"] == "warn" and "weights" in c["message"]


@pytest.mark.parametrize("spec", ["", "   ", "a\x00b", "/tmp/\x00"])
def test_empty_or_nul_source_is_a_source_error(spec):
    from cfm.inspection import SourceError, inspect
    with pytest.raises(SourceError):
        inspect(spec)


def test_the_garbage_collector_is_back_on_after_any_parse(tmp_path):
    import gc
    path = _model(tmp_path)
    (path / "config.json").write_bytes(b"[" * 100_000)
    (path / "tokenizer.json").write_bytes(b"{bad")
    run(path)
    assert gc.isenabled()


def test_a_flat_64mb_scale_array_is_walked_without_a_tuple_per_item(tmp_path):
    """The depth walk pushes containers only (measured: 31M numbers cost no extra tuples)."""
    from cfm.inspection.jsonsafe import _depth_ok
    assert _depth_ok([0] * 1_000_000, 2) is True
    assert _depth_ok([[[[0]]]], 3) is False and _depth_ok([[[[0]]]], 4) is True
    assert _depth_ok({"a": {"b": [1, {"c": 2}]}}, 4) is True and _depth_ok({"a": {"b": [1, {"c": {}}]}}, 4) is False
