"""Hostile safetensors headers: every one is a failed `safetensors_header`
check naming the file and the reason, never an exception, a hang or a
read of the weights. Expectations follow the reference reader (the
safetensors package, serde_json underneath), which a test below consults."""
from __future__ import annotations

import json
import struct
import time

import pytest
from inspect_support import check, folder, llama_cfg, raw_header_file, real_safetensors, run, statuses
from safetensors import safe_open

from cfm.inspection import InspectLimits


def _t(dtype="F16", shape=(2,), offsets=(0, 4)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def _header(d: dict) -> bytes:
    return json.dumps(d).encode()


# name -> (header bytes, data length, words expected in the reason)
CASES = {
    "not_json": (b"{this is not json}", 0, "not valid JSON"),
    "truncated_json": (b'{"a": {"dtype": "F16", "shape": [2], "data_', 4, "not valid JSON"),
    "not_utf8": (b'{"\xff\xfe": 1}', 0, "not UTF-8"),
    "only_spaces": (b" " * 64, 0, "not valid JSON"),
    "bom": (b"\xef\xbb\xbf" + _header({"a": _t()}), 4, "not valid JSON"),
    "array": (b"[1, 2, 3]", 0, "not a JSON object"),
    "string": (b'"hello"', 0, "not a JSON object"),
    "number": (b"12345678", 0, "not a JSON object"),
    "null": (b"null", 0, "not a JSON object"),
    "nan_offset": (b'{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, NaN]}}', 4, "not valid JSON"),
    "infinity": (b'{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4], "x": Infinity}}', 4,
                 "not valid JSON"),
    "huge_int_digits": (b'{"a": {"dtype": "F16", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 4]}}', 4,
                        "not valid JSON"),
    "deep": (b"{" + b'"a":[' * 100_000 + b"]" * 100_000 + b"}", 0, "not valid JSON"),
    "offsets_out_of_range": (_header({"a": _t(offsets=(0, 400))}), 4, "past the"),
    "offsets_far_out": (_header({"a": _t(offsets=(0, 2**70))}), 4, "invalid data_offsets"),
    "offsets_4000_digits": (_header({"a": _t(offsets=(0, 10**4000))}), 4, "invalid data_offsets"),
    "overlap": (_header({"a": _t(offsets=(0, 4)), "b": _t(offsets=(2, 6))}), 6, "inside the previous"),
    "gap": (_header({"a": _t(offsets=(0, 4)), "b": _t(offsets=(8, 12))}), 12, "gap"),
    "trailing": (_header({"a": _t(offsets=(0, 4))}), 100, "not indexed"),
    "size_mismatch": (_header({"a": _t(shape=(3,), offsets=(0, 4))}), 4, "needs 6 bytes"),
    "f32_mismatch": (_header({"a": _t("F32", shape=(2,), offsets=(0, 4))}), 4, "needs 8 bytes"),
    "negative_shape": (_header({"a": _t(shape=(-2,), offsets=(0, 4))}), 4, "invalid shape"),
    "enormous_shape": (_header({"a": _t(shape=(2**40, 2**40), offsets=(0, 4))}), 4, "invalid shape"),
    "shape_4000_digits": (_header({"a": _t(shape=(10**4000, 10**4000), offsets=(0, 4))}), 4, "invalid shape"),
    "zero_times_huge": (_header({"a": _t(shape=(0, 10**4000), offsets=(0, 0)), "b": _t()}), 4, "invalid shape"),
    "float_shape": (_header({"a": _t(shape=(2.0,), offsets=(0, 4))}), 4, "invalid shape"),
    "bool_shape": (_header({"a": _t(shape=(True, True), offsets=(0, 4))}), 4, "invalid shape"),
    "shape_not_list": (_header({"a": {"dtype": "F16", "shape": 2, "data_offsets": [0, 4]}}), 4, "invalid shape"),
    "shape_object": (_header({"a": {"dtype": "F16", "shape": {}, "data_offsets": [0, 2]}}), 2, "invalid shape"),
    "65_dims": (_header({"a": _t(shape=[1] * 65 + [2], offsets=(0, 4))}), 4, "invalid shape"),
    "float_offsets": (_header({"a": _t(offsets=(0.0, 4.0))}), 4, "invalid data_offsets"),
    "bool_offsets": (_header({"a": _t(offsets=(False, True))}), 1, "invalid data_offsets"),
    "string_offsets": (_header({"a": _t(offsets=("0", "4"))}), 4, "invalid data_offsets"),
    "three_offsets": (_header({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 2, 4]}}), 4,
                      "invalid data_offsets"),
    "reversed_offsets": (_header({"a": _t(offsets=(4, 0))}), 4, "invalid data_offsets"),
    "negative_offsets": (_header({"a": _t(offsets=(-4, 0))}), 4, "invalid data_offsets"),
    "no_offsets": (_header({"a": {"dtype": "F16", "shape": [2]}}), 4, "invalid data_offsets"),
    "unknown_dtype": (_header({"a": _t("F128")}), 4, "unknown dtype F128"),
    "lowercase_dtype": (_header({"a": _t("f16")}), 4, "unknown dtype"),
    "dtype_not_string": (_header({"a": {"dtype": 16, "shape": [2], "data_offsets": [0, 4]}}), 4,
                         "not a tensor description"),
    "entry_list": (_header({"a": [1, 2, 3]}), 0, "not a tensor description"),
    "entry_string": (_header({"a": "F16"}), 0, "not a tensor description"),
    "entry_null": (_header({"a": None}), 0, "not a tensor description"),
    "metadata_int": (_header({"__metadata__": {"format": "pt", "step": 5}, "a": _t()}), 4, "step is a number"),
    "metadata_nested": (_header({"__metadata__": {"format": {"x": "pt"}}, "a": _t()}), 4, "format is a object"),
    "metadata_list": (_header({"__metadata__": ["format", "pt"], "a": _t()}), 4, "__metadata__ is not an object"),
    "duplicate_tensor": (b'{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}, '
                         b'"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}', 4, "names a twice"),
    "duplicate_field": (b'{"a": {"dtype": "F16", "dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}', 4,
                        "twice"),
    "duplicate_metadata": (b'{"__metadata__": {"format": "pt", "format": "mlx"}, '
                           b'"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}', 4, "twice"),
    "empty_object_with_data": (b"{}", 8, "not indexed"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_header_is_a_clear_failure(tmp_path, case):
    raw, data_len, words = CASES[case]
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", raw, data_len)
    d = run(path)
    c = check(d, "safetensors_header")
    assert c["status"] == "fail", c
    assert c["message"].startswith("The header of model.safetensors is malformed"), c["message"]
    assert words in c["message"], c["message"]
    assert len(c["message"]) < 600
    st = statuses(d)
    assert (st["safetensors_metadata"], st["dtypes"]) == ("skip", "skip")
    assert d["parameters_exact"] is False and d["weight_bytes"] is None and d["deployable"] is False


# Not compared: the reference reader refuses the first five too, but slowly; it keeps the last of
# repeated keys (serde_json) where cfm refuses the ambiguity on purpose.
_NOT_COMPARED = {"deep", "huge_int_digits", "offsets_4000_digits", "shape_4000_digits", "zero_times_huge",
                 "duplicate_tensor", "duplicate_metadata"}


@pytest.mark.parametrize("case", sorted(set(CASES) - _NOT_COMPARED))
def test_the_reference_reader_rejects_them_too(tmp_path, case):
    """Keeps the cases honest: each one is also refused by safetensors itself."""
    raw, data_len, _ = CASES[case]
    path = raw_header_file(tmp_path / "x.safetensors", raw, data_len)
    with pytest.raises(Exception):  # noqa: B017 - the reference reader raises assorted types
        with safe_open(str(path), "np") as f:
            for k in f.keys():
                f.get_tensor(k)


@pytest.mark.parametrize("declared, words", [(2**63, "declares"), (2**64 - 1, "declares"), (10_000, "declares")])
def test_header_length_past_the_file(tmp_path, declared, words):
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", b'{"a": 1}', 0, length=declared)
    c = check(run(path), "safetensors_header")
    assert c["status"] == "fail" and words in c["message"] and str(declared) in c["message"]


@pytest.mark.parametrize("content", [b"", b"\x01", b"\x00" * 7, struct.pack("<Q", 0), struct.pack("<Q", 1) + b"{"])
def test_tiny_files_fail(tmp_path, content):
    path = folder(tmp_path / "m", llama_cfg())
    (path / "model.safetensors").write_bytes(content)
    assert check(run(path), "safetensors_header")["status"] == "fail"


def test_zero_length_tensors_are_valid(tmp_path):
    raw = _header({"__metadata__": {"format": "pt"}, "empty": _t(shape=(0, 16), offsets=(0, 0)),
                   "a": _t(offsets=(0, 4)), "scalar": _t("F32", shape=(), offsets=(4, 8))})
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", raw, 8)
    d = run(path)
    assert check(d, "safetensors_header")["status"] == "pass"
    assert d["parameters"] == 0 + 2 + 1 and d["weight_bytes"] == 8


def test_leading_spaces_are_accepted_as_the_reference_reader_does(tmp_path):
    raw = b"   " + _header({"__metadata__": {"format": "pt"}, "a": _t()})
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", raw, 4)
    assert check(run(path), "safetensors_header")["status"] == "pass"
    with safe_open(str(path / "model.safetensors"), "np") as f:
        assert list(f.keys()) == ["a"]


def test_real_file_written_by_safetensors_passes(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    real_safetensors(path / "model.safetensors", {"a": ("F32", [3, 5]), "b": ("I64", [7]), "c": ("BOOL", [2])})
    d = run(path)
    assert check(d, "safetensors_header")["status"] == "pass"
    assert d["parameters"] == 15 + 7 + 2 and d["weight_bytes"] == 60 + 56 + 2 and d["serving_bytes"] == 30 + 56 + 2


def test_one_bad_shard_of_several_is_named(tmp_path):
    from modelfactory import write_sharded
    path = folder(tmp_path / "m", llama_cfg())
    files = write_sharded(path, {f"w{i}": ("BF16", [4, 4]) for i in range(4)}, 2)
    raw_header_file(path / files[1], b"garbage", 0)
    d = run(path)
    c = check(d, "safetensors_header")
    assert c["status"] == "fail" and files[1] in c["message"] and files[0] not in c["message"]
    assert check(d, "size")["status"] == "skip"


def test_long_tensor_names_are_cut_in_messages(tmp_path):
    name = "x" * 1_000_000
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", _header({name: _t("F999")}), 4)
    c = check(run(path), "safetensors_header")
    assert c["status"] == "fail" and len(c["message"]) < 600


def test_header_over_the_cap_is_refused_without_reading_it(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", b"{", 0, length=100_000_001)
    import os
    os.truncate(path / "model.safetensors", 8 + 100_000_001)
    d = run(path)
    c = check(d, "safetensors_header")
    assert c["status"] == "fail" and "over the cap" in c["message"]
    assert d["files"]["bytes_read"] < 10_000


def test_a_lower_cap_is_obeyed(tmp_path):
    raw = _header({"__metadata__": {"format": "pt"}, "a": _t()}) + b" " * 5000
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", raw, 4)
    assert check(run(path, limits=InspectLimits(max_header_bytes=4096)), "safetensors_header")["status"] == "fail"
    assert check(run(path), "safetensors_header")["status"] == "pass"


def test_too_many_tensors_is_refused(tmp_path):
    tensors = {f"t{i}": _t(offsets=(4 * i, 4 * i + 4)) for i in range(50)}
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", _header(tensors), 200)
    c = check(run(path, limits=InspectLimits(max_tensors=10)), "safetensors_header")
    assert c["status"] == "fail" and "50 tensors" in c["message"]


def test_a_5mb_header_of_50k_tensors_is_answered_quickly(tmp_path):
    """Bounded time: the parse is linear (the 100 MB case is in benchmarks/)."""
    tensors = {"__metadata__": {"format": "pt"}}
    tensors.update({f"model.layers.{i}.some.rather.long.tensor.name.weight": _t(offsets=(4 * i, 4 * i + 4))
                    for i in range(50_000)})
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", _header(tensors), 200_000)
    t0 = time.monotonic()
    d = run(path)
    assert time.monotonic() - t0 < 10
    assert check(d, "safetensors_header")["status"] == "pass" and d["parameters"] == 100_000


def test_the_tensor_cap_bounds_the_whole_model_not_each_shard(tmp_path):
    from modelfactory import write_sharded
    path = folder(tmp_path / "m", llama_cfg())
    write_sharded(path, {f"w{i}": ("BF16", [2]) for i in range(40)}, 4)  # 10 tensors a shard
    assert check(run(path, limits=InspectLimits(max_tensors=40)), "safetensors_header")["status"] == "pass"
    c = check(run(path, limits=InspectLimits(max_tensors=25)), "safetensors_header")
    assert c["status"] == "fail" and "over the cap of 25" in c["message"]


def test_too_many_tensor_objects_are_refused_before_parsing(tmp_path):
    """The count comes from the raw bytes: an unparseable header of too many objects is still 'too many'."""
    raw = b'{"__metadata__": {"format": "pt"}, ' + b", ".join(b'"t%d": {' % i for i in range(30)) + b"garbage"
    path = folder(tmp_path / "m", llama_cfg())
    raw_header_file(path / "model.safetensors", raw, 0)
    c = check(run(path, limits=InspectLimits(max_tensors=10)), "safetensors_header")
    assert c["status"] == "fail" and "over the cap of 10" in c["message"]
    assert "not valid JSON" in check(run(path), "safetensors_header")["message"]


LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4665a5ea423c2713d436b5ee50593a9640e0018c1550b5a0002f74190d6caea8\n"
               b"size 4976698672\n")


@pytest.mark.parametrize("shards", [1, 2])
def test_a_git_lfs_pointer_instead_of_the_weights_is_named_as_such(tmp_path, shards):
    """A clone made without git-lfs: the .safetensors files hold the pointer text."""
    path = folder(tmp_path / "m", llama_cfg())
    names = ["model.safetensors"] if shards == 1 else [f"model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    for name in names:
        (path / name).write_bytes(LFS_POINTER)
    d = run(path)
    c = check(d, "safetensors_header")
    assert c["status"] == "fail" and c["message_key"] == "safetensors_header.lfs_pointer", c
    assert "this is a Git LFS pointer: the weights were not downloaded (git lfs pull)" in c["message"]
    assert "git lfs pull" in c["remedy"] and "2336927755350992246" not in c["message"]
    assert d["deployable"] is False


def test_a_lfs_pointer_reason_reads_in_japanese():
    from django.utils import translation

    from cfm.inspection.messages import HEADER_REASONS, MESSAGES

    with translation.override("ja"):
        reason = translation.gettext(HEADER_REASONS["header_lfs_pointer"])
        message, remedy = (translation.gettext(t) for t in MESSAGES["safetensors_header.lfs_pointer"])
    assert "Git LFS" in reason and "ポインター" in reason
    assert "{file}" in message and "{reason}" in message and "重み" in message and "git lfs pull" in remedy


def test_a_big_file_starting_with_version_is_no_lfs_pointer(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    (path / "model.safetensors").write_bytes(b"version " + b"\0" * 2000)
    c = check(run(path), "safetensors_header")
    assert c["status"] == "fail" and c["message_key"] == "safetensors_header.fail"
