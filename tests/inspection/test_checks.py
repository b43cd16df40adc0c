"""Each of the 15 checks of the report contract: pass, warn, fail and skip."""
from __future__ import annotations

import json
import os

import pytest
from inspect_support import TINY, check, folder, llama_cfg, real_safetensors, run, statuses
from modelfactory import DTYPE_BYTES, write_json, write_raw_safetensors, write_sharded, write_sparse_safetensors


def _good(tmp_path, **cfg):
    path = folder(tmp_path / "m", llama_cfg(**cfg))
    real_safetensors(path / "model.safetensors")
    return path


def test_a_good_model_passes_every_check(tmp_path):
    d = run(_good(tmp_path))
    st = statuses(d)
    assert st.pop("tsfm_config") == "skip"
    assert set(st.values()) == {"pass"}, st
    assert d["deployable"] is True and d["preparation"] == []
    assert d["source"] == str((tmp_path / "m").resolve())
    assert d["quantization"] is None and d["dtypes"] == {"F16": 2}


# -- config_present / config_valid ------------------------------------------------------------------------------
NEEDS_CONFIG = ["architecture", "trust_remote_code", "quantization", "tsfm_config", "size", "software_spec",
                "known_issues"]


@pytest.mark.parametrize("layout", ["missing", "in_subfolder", "directory"])
def test_config_missing_fails_and_config_checks_skip(tmp_path, layout):
    path = folder(tmp_path / "m", None)
    real_safetensors(path / "model.safetensors")
    if layout == "in_subfolder":
        write_json(path / "sub" / "config.json", llama_cfg())
    elif layout == "directory":
        (path / "config.json").mkdir()
    d = run(path)
    st = statuses(d)
    assert (st["config_present"], st["config_valid"]) == ("fail", "skip")
    assert all(st[c] == "skip" for c in NEEDS_CONFIG), st
    # the file checks still run
    assert (st["weights_format"], st["safetensors_header"], st["tokenizer"]) == ("pass", "pass", "pass")
    assert "config.json" in check(d, "config_present")["message"]
    assert d["deployable"] is False and d["model_type"] is None


@pytest.mark.parametrize("content, words", [
    (b'{"model_type": "llama",', "not valid JSON"),
    (b"[1, 2, 3]", "array"),
    (b'"llama"', "string"),
    (b"null", "null"),
    (b'{"architectures": ["LlamaForCausalLM"]}', "model_type"),
    (b'{"model_type": 7}', "model_type"),
    (b'{"model_type": ""}', "model_type"),
    (b'\xff\xfe{"model_type": "llama"}', "UTF-8"),
    (b"", "not valid JSON"),
])
def test_config_invalid_fails_naming_the_fault(tmp_path, content, words):
    path = folder(tmp_path / "m", None)
    real_safetensors(path / "model.safetensors")
    (path / "config.json").write_bytes(content)
    d = run(path)
    c = check(d, "config_valid")
    assert c["status"] == "fail" and words in c["message"], c["message"]
    assert statuses(d)["architecture"] == "skip" and statuses(d)["weights_format"] == "pass"
    assert d["deployable"] is False


def test_json_files_with_a_byte_order_mark_fail_as_the_runtime_would(tmp_path):
    """transformers and tokenizers read these files with json.loads, which refuses a BOM."""
    path = _good(tmp_path)
    (path / "config.json").write_bytes("\ufeff".encode() + json.dumps(llama_cfg()).encode())
    c = check(run(path), "config_valid")
    assert c["status"] == "fail" and "byte-order mark" in c["message"]
    path = _good(tmp_path / "tok")
    (path / "tokenizer.json").write_bytes("\ufeff".encode() + (path / "tokenizer.json").read_bytes())
    c = check(run(path), "tokenizer")
    assert c["status"] == "fail" and "byte-order mark" in c["message"] and "tokenizer.json" in c["message"]


# -- architecture and trust_remote_code -------------------------------------------------------------------------
def test_auto_map_warns_that_custom_code_will_not_run(tmp_path):
    d = run(_good(tmp_path, auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"}))
    c = check(d, "trust_remote_code")
    assert c["status"] == "warn" and "AutoModelForCausalLM" in c["message"] and d["deployable"] is True


# -- weights_format ---------------------------------------------------------------------------------------------
def test_bin_only_warns_and_plans_conversion(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    (path / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not read")
    d = run(path)
    st = statuses(d)
    assert st["weights_format"] == "warn" and "pytorch_model.bin" in check(d, "weights_format")["message"]
    assert (st["safetensors_header"], st["safetensors_index"], st["safetensors_metadata"], st["dtypes"]) == \
        ("skip",) * 4
    assert d["preparation"] == ["convert_weights_to_safetensors"] and d["deployable"] is True


@pytest.mark.parametrize("names", [["model.pt"], ["weights.pth"], ["pytorch_model-00001-of-00002.bin",
                                                                   "pytorch_model-00002-of-00002.bin"]])
def test_other_pytorch_names_warn(tmp_path, names):
    path = folder(tmp_path / "m", llama_cfg())
    for n in names:
        (path / n).write_bytes(b"x")
    assert check(run(path), "weights_format")["status"] == "warn"


@pytest.mark.parametrize("names, key", [
    ([], "weights_format.fail_none"),
    (["training_args.bin", "optimizer.pt"], "weights_format.fail_none"),
    (["model.gguf"], "weights_format.fail_unusable"),
    (["tf_model.h5", "flax_model.msgpack"], "weights_format.fail_unusable"),
    (["sub/model.safetensors"], "weights_format.fail_none"),
])
def test_no_usable_weights_fails(tmp_path, names, key):
    path = folder(tmp_path / "m", llama_cfg())
    for n in names:
        (path / n).parent.mkdir(parents=True, exist_ok=True)
        (path / n).write_bytes(b"x" * 16)
    d = run(path)
    c = check(d, "weights_format")
    assert (c["status"], c["message_key"]) == ("fail", key)
    for n in names:
        if key.endswith("unusable"):
            assert n in c["message"]
    assert d["deployable"] is False


# -- safetensors_index ------------------------------------------------------------------------------------------
def _sharded(tmp_path, shards=3):
    path = folder(tmp_path / "m", llama_cfg())
    tensors = {f"model.layers.{i}.w": ("BF16", [16, 16]) for i in range(6)}
    files = write_sharded(path, tensors, shards)
    return path, files, tensors


def test_sharded_model_with_matching_index_passes(tmp_path):
    path, files, tensors = _sharded(tmp_path)
    d = run(path)
    c = check(d, "safetensors_index")
    assert c["status"] == "pass" and "3 shards" in c["message"]
    assert d["parameters"] == 6 * 256 and d["weight_bytes"] == 6 * 512


def _edit_index(path, fn):
    idx = path / "model.safetensors.index.json"
    data = json.loads(idx.read_text())
    fn(data)
    idx.write_text(json.dumps(data))


def test_index_naming_a_missing_shard_fails(tmp_path):
    path, files, _ = _sharded(tmp_path)
    os.remove(path / files[1])
    c = check(run(path), "safetensors_index")
    assert c["status"] == "fail" and files[1] in c["message"]


def test_index_placing_a_tensor_in_the_wrong_shard_fails(tmp_path):
    path, files, _ = _sharded(tmp_path)
    _edit_index(path, lambda d: d["weight_map"].__setitem__("model.layers.0.w", files[2]))
    c = check(run(path), "safetensors_index")
    assert c["status"] == "fail" and "model.layers.0.w" in c["message"]


def test_index_naming_a_tensor_no_shard_holds_fails(tmp_path):
    path, files, _ = _sharded(tmp_path)
    _edit_index(path, lambda d: d["weight_map"].__setitem__("lm_head.weight", files[0]))
    c = check(run(path), "safetensors_index")
    assert c["status"] == "fail" and "lm_head.weight" in c["message"]


def test_shard_holding_a_tensor_the_index_lacks_fails(tmp_path):
    path, files, _ = _sharded(tmp_path)
    _edit_index(path, lambda d: d["weight_map"].pop("model.layers.5.w"))
    c = check(run(path), "safetensors_index")
    assert c["status"] == "fail" and "model.layers.5.w" in c["message"]


def test_several_safetensors_without_index_fail(tmp_path):
    path, files, _ = _sharded(tmp_path)
    os.remove(path / "model.safetensors.index.json")
    c = check(run(path), "safetensors_index")
    assert c["status"] == "fail" and "index" in c["message"]


def test_duplicate_tensor_across_shards_fails(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    write_sparse_safetensors(path / "a.safetensors", {"x": ("F16", [4]), "y": ("F16", [4])})
    write_sparse_safetensors(path / "b.safetensors", {"x": ("F16", [4])})
    write_json(path / "model.safetensors.index.json", {"weight_map": {"x": "a.safetensors", "y": "a.safetensors"}})
    # b.safetensors beside the index is not named by it, so only a counts; name both to clash
    _edit_index(path, lambda d: d["weight_map"].__setitem__("y", "b.safetensors"))
    c = check(run(path), "safetensors_index")
    assert c["status"] == "fail" and "x" in c["message"] and "both" in c["message"]


def test_unnamed_consolidated_file_beside_the_index_is_ignored(tmp_path):
    path, files, tensors = _sharded(tmp_path)
    write_sparse_safetensors(path / "consolidated.safetensors", tensors)
    d = run(path)
    assert check(d, "safetensors_index")["status"] == "pass" and d["parameters"] == 6 * 256


@pytest.mark.parametrize("index", [b"not json", b"[]", b'{"weight_map": []}', b'{"weight_map": {"x": 5}}',
                                   b'{"metadata": {}}'])
def test_invalid_index_fails(tmp_path, index):
    path, files, _ = _sharded(tmp_path)
    (path / "model.safetensors.index.json").write_bytes(index)
    d = run(path)
    c = check(d, "safetensors_index")
    assert c["status"] == "fail" and "model.safetensors.index.json" in c["message"]


# -- safetensors_metadata ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("metadata, words", [({}, "no __metadata__"), ({"format": "mlx"}, '"mlx"'),
                                             ({"format": "tf"}, '"tf"'), ({"format": "PT"}, '"PT"')])
def test_metadata_other_than_pt_fails_and_plans_the_fix(tmp_path, metadata, words):
    path = folder(tmp_path / "m", llama_cfg(), TINY, metadata=metadata)
    d = run(path)
    c = check(d, "safetensors_metadata")
    assert c["status"] == "fail" and words in c["message"] and "model.safetensors" in c["message"]
    assert "fix_safetensors_metadata" in c["remedy"]
    assert d["preparation"] == ["fix_safetensors_metadata"] and d["deployable"] is False


def test_metadata_missing_in_one_shard_of_many_fails_naming_it(tmp_path):
    path, files, _ = _sharded(tmp_path)
    write_sparse_safetensors(path / files[2], {"model.layers.4.w": ("BF16", [16, 16]),
                                               "model.layers.5.w": ("BF16", [16, 16])}, metadata={})
    c = check(run(path), "safetensors_metadata")
    assert c["status"] == "fail" and files[2] in c["message"]


# -- dtypes -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtypes, status", [
    (["F16", "BF16", "F32", "I64", "I32", "BOOL", "U8", "I8", "I16", "U16"], "pass"),
    (["BF16", "F8_E4M3"], "warn"),
    (["F8_E5M2"], "warn"),
    (["BF16", "F64"], "fail"),
    (["C64"], "fail"),
    (["F4"], "fail"),
    (["F6_E2M3"], "fail"),
])
def test_dtypes(tmp_path, dtypes, status):
    path = folder(tmp_path / "m", llama_cfg())
    packed = {"F4": 4, "F6_E2M3": 6}
    if dtypes[0] in packed:
        # modelfactory lays out whole bytes only: 8 values of 4 or 6 bits by hand
        nbytes = 8 * packed[dtypes[0]] // 8
        hdr = {"__metadata__": {"format": "pt"}, "t0": {"dtype": dtypes[0], "shape": [8], "data_offsets": [0, nbytes]}}
        write_raw_safetensors(path / "model.safetensors", hdr, b"\0" * nbytes)
    else:
        DTYPE_BYTES.setdefault("C64", 8)
        write_sparse_safetensors(path / "model.safetensors", {f"t{i}": (dt, [8]) for i, dt in enumerate(dtypes)})
    d = run(path)
    c = check(d, "dtypes")
    assert c["status"] == status, check(d, "safetensors_header")["message"]
    assert sum(d["dtypes"].values()) == len(dtypes) and set(d["dtypes"]) == set(dtypes)
    if status == "fail":
        assert dtypes[-1] in c["message"] and d["deployable"] is False


# -- tokenizer --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("files, status", [
    ({"tokenizer.model": b"\x0a\x05hello"}, "warn"),
    ({"vocab.json": b"{}", "merges.txt": b"#version: 0.2\n"}, "warn"),
    ({"spiece.model": b"x"}, "warn"),
    ({}, "fail"),
    ({"vocab.json": b"{}"}, "fail"),
    ({"tokenizer.json": b"{not json"}, "fail"),
    ({"tokenizer.json": b"[1, 2]"}, "fail"),
    ({"tokenizer_config.json": b"{}"}, "fail"),
])
def test_tokenizer(tmp_path, files, status):
    path = folder(tmp_path / "m", llama_cfg(), tokenizer=False)
    real_safetensors(path / "model.safetensors")
    for name, content in files.items():
        (path / name).write_bytes(content)
    d = run(path)
    c = check(d, "tokenizer")
    assert c["status"] == status, c
    if status == "warn":
        assert d["preparation"] == ["generate_tokenizer_json"] and d["deployable"] is True
    else:
        assert d["deployable"] is False


def test_bin_weights_and_slow_tokenizer_is_deployable_after_both_steps(tmp_path):
    path = folder(tmp_path / "m", llama_cfg(), tokenizer=False)
    (path / "pytorch_model.bin").write_bytes(b"x")
    (path / "tokenizer.model").write_bytes(b"x")
    d = run(path)
    assert d["deployable"] is True
    assert d["preparation"] == ["convert_weights_to_safetensors", "generate_tokenizer_json"]


# -- quantization -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type, method, status", [
    ("llama", "gptq", "pass"), ("llama", "awq", "pass"), ("llama", "aqlm", "pass"), ("llama", "GPTQ", "pass"),
    ("mistral", "marlin", "pass"), ("qwen2", "awq", "pass"), ("mixtral", "gptq", "pass"),
    ("gpt_bigcode", "gptq", "pass"),
    ("llama", "bitsandbytes", "warn"), ("mistral", "gptq", "warn"), ("qwen2", "gptq", "warn"),
    ("falcon", "gptq", "warn"), ("llama", "fp8", "warn"),
])
def test_quantization_is_certified_per_architecture(tmp_path, model_type, method, status):
    cfg = {"model_type": model_type, "architectures": ["X"], "quantization_config": {"quant_method": method,
                                                                                      "bits": 4}}
    path = folder(tmp_path / "m", cfg)
    real_safetensors(path / "model.safetensors")
    d = run(path)
    assert d["quantization"] == method.lower()
    assert check(d, "quantization")["status"] == status
    assert d["deployable"] is True


def test_quantization_config_without_method_warns(tmp_path):
    d = run(_good(tmp_path, quantization_config={"bits": 4}))
    assert check(d, "quantization")["status"] == "warn" and d["quantization"] is None


# -- known_issues -----------------------------------------------------------------------------------------------
def test_llama31_rope_scaling_warns_with_the_fix(tmp_path):
    rope = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3"}
    d = run(_good(tmp_path, rope_scaling=rope))
    c = check(d, "known_issues")
    assert c["status"] == "warn" and "llama3" in c["message"]
    assert '"dynamic"' in c["remedy"] and "8.0" in c["remedy"] and "4.43" in c["remedy"]
    assert d["preparation"] == ["fix_rope_scaling"] and d["deployable"] is True


@pytest.mark.parametrize("rope", [None, {"type": "linear", "factor": 2.0}, {"type": "dynamic", "factor": 8.0},
                                  "llama3", [1, 2]])
def test_other_rope_scaling_has_no_known_issue(tmp_path, rope):
    assert check(run(_good(tmp_path, rope_scaling=rope)), "known_issues")["status"] == "pass"


# -- skips when config.json is unusable --------------------------------------------------------------------------
def test_no_safetensors_skips_the_header_checks(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    (path / "model.gguf").write_bytes(b"GGUF")
    st = statuses(run(path))
    assert [st[c] for c in ("safetensors_header", "safetensors_index", "safetensors_metadata", "dtypes")] == \
        ["skip"] * 4


def test_a_missing_shard_makes_the_size_an_estimate_not_a_partial_count(tmp_path):
    from modelfactory import LLAMA3_8B, make_model
    path = make_model(tmp_path / "m", LLAMA3_8B, shards=4)
    os.remove(path / "model-00002-of-00004.safetensors")
    d = run(path)
    assert check(d, "safetensors_index")["status"] == "fail"
    assert d["parameters_exact"] is False and d["weight_bytes"] is None
    assert abs(d["parameters"] - 8_030_261_248) / 8_030_261_248 < 0.01


@pytest.mark.parametrize("header", [b"{}", b'{"__metadata__": {"format": "pt"}}'])
def test_safetensors_that_hold_no_tensors_are_no_weights(tmp_path, header):
    from inspect_support import raw_header_file
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", header, 0)
    d = run(path)
    c = check(d, "weights_format")
    assert c["status"] == "fail" and "no tensors" in c["message"] and d["deployable"] is False


# -- files that cannot be read, estimates, rounding, older quantized layouts ---------------------------------
@pytest.mark.parametrize("name, check_id", [("config.json", "config_valid"), ("tokenizer.json", "tokenizer"),
                                            ("model.safetensors.index.json", "safetensors_index")])
def test_a_json_file_that_vanishes_while_read_fails_its_check_and_names_it(tmp_path, name, check_id, monkeypatch):
    """A permission error, or a file gone between listing and reading (tests run as root, which reads
    any file: the error is raised where the source reads)."""
    from cfm.inspection.sources import LocalFolderSource

    path = _good(tmp_path)
    if name == "model.safetensors.index.json":
        write_json(path / name, {"weight_map": {"model.norm.weight": "model.safetensors"}})
    real = LocalFolderSource.read_file

    def read_file(self, rel, max_bytes):
        if rel == name:
            raise PermissionError(13, "Permission denied")
        return real(self, rel, max_bytes)

    monkeypatch.setattr(LocalFolderSource, "read_file", read_file)
    c = check(run(path), check_id)
    assert c["status"] == "fail" and name in c["message"] and "Permission denied" in c["message"], c


def test_an_invalid_tokenizer_json_beside_slow_files_says_prepare_rewrites_it(tmp_path):
    path = _good(tmp_path)
    (path / "tokenizer.json").write_text("{nope")
    (path / "tokenizer.model").write_bytes(b"\x0a\x00")
    d = run(path)
    c = check(d, "tokenizer")
    assert c["status"] == "fail" and "Prepare" in c["remedy"] and "tokenizer.model" in c["remedy"]
    assert "generate_tokenizer_json" in d["preparation"]


def test_a_too_deep_tokenizer_json_says_how_deep(tmp_path):
    path = _good(tmp_path)
    (path / "tokenizer.json").write_text("[" * 500 + "]" * 500)
    c = check(run(path), "tokenizer")
    assert c["status"] == "fail" and "levels deep" in c["message"]


def test_a_size_failure_from_an_estimate_says_it_is_an_estimate(tmp_path):
    import modelfactory

    cfg = modelfactory.LLAMA31_405B
    path = folder(tmp_path / "m", cfg)
    (path / "pytorch_model.bin").write_bytes(b"not read")
    d = run(path)
    c = check(d, "size")
    assert d["parameters_exact"] is False and c["status"] == "fail"
    assert "estimated" in c["message"] and "about" in c["message"].lower()


def test_a_size_just_over_a_bound_is_not_shown_rounded_onto_it(tmp_path):
    path = folder(tmp_path / "m", llama_cfg(model_type="codegen", architectures=["CodeGenForCausalLM"]))
    # 26,000,000,001 BF16 values: one over Small's inclusive bound
    write_sparse_safetensors(path / "model.safetensors", {"w": ("BF16", [26_000_000_001])})
    c = check(run(path), "size")
    assert c["status"] == "fail" and "26,000,000,001" in c["message"] and "26.00B" not in c["message"]


def test_an_autogptq_quantize_config_json_is_read_as_the_quantization_config(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    write_json(path / "quantize_config.json", {"bits": 4, "group_size": 128, "desc_act": False})
    write_sparse_safetensors(path / "model.safetensors", {
        "model.layers.0.mlp.down_proj.qweight": ("I32", [512, 4096]),
        "model.layers.0.mlp.down_proj.qzeros": ("I32", [32, 512]),
        "model.layers.0.mlp.down_proj.scales": ("F16", [32, 4096]),
        "model.layers.0.mlp.down_proj.g_idx": ("I32", [4096]),
        "model.norm.weight": ("F16", [4096]),
    })
    d = run(path)
    assert d["quantization"] == "gptq" and check(d, "quantization")["status"] == "pass"
    assert d["parameters"] == 512 * 4096 * 8 + 4096


def test_an_index_naming_a_file_that_is_not_safetensors_says_so(tmp_path):
    path, files, _ = _sharded(tmp_path)
    index = json.loads((path / "model.safetensors.index.json").read_text())
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = "config.json"
    write_json(path / "model.safetensors.index.json", index)
    c = check(run(path), "safetensors_index")
    assert c["status"] == "fail" and "config.json" in c["message"] and "not a .safetensors file" in c["message"]


def test_llama3_rope_scaling_without_a_factor_is_not_given_an_invented_one(tmp_path):
    d = run(_good(tmp_path, rope_scaling={"rope_type": "llama3"}))
    c = check(d, "known_issues")
    assert c["status"] == "warn" and "no usable factor" in c["message"]
    assert "fix_rope_scaling" not in d["preparation"] and '"factor": 8.0' not in c["remedy"]


@pytest.mark.parametrize("make, kind", [(os.mkfifo, "FIFO"), (os.mkdir, "folder"),
                                        (lambda p: os.symlink(p.parent / "nowhere", p), "link that leads nowhere")])
@pytest.mark.parametrize("name, check_id", [("config.json", "config_present"), ("tokenizer.json", "tokenizer")])
def test_a_model_file_that_is_not_a_regular_file_is_called_what_it_is(tmp_path, make, kind, name, check_id):
    path = _good(tmp_path)
    (path / name).unlink()
    make(path / name)
    c = check(run(path), check_id)
    assert c["status"] == "fail" and name in c["message"] and kind in c["message"], c["message"]
