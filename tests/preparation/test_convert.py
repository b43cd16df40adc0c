"""The conversion utility on small real models: converted, re-inspected with
the engine (deployable, nothing left to prepare) and loaded back."""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from modelfactory import Evil
from prep_builders import make_ttm, tiny_llama_config, write_json
from safetensors.numpy import save_file

from cfm.inspection import inspect
from cfm.preparation.errors import PrepareError
from cfm.preparation.pipeline import NeedsReview, PrepareOptions, SourceSpec, prepare
from cfm.preparation.storage import LocalStorage, verify_manifest


def _prepare(folder: Path, tmp_path: Path, **options):
    report = inspect(str(folder)).to_dict()
    opts = PrepareOptions(steps=report["preparation"], max_memory=2 * 1024**3, time_limit=120, **options)
    return prepare(SourceSpec(kind="local", path=str(folder)), opts, work_dir=tmp_path / "work",
                   storage=LocalStorage(tmp_path / "media"), key="prepared/1/1")


def test_bin_llama_with_sentencepiece_becomes_deployable_and_loads_back_equal(bin_llama, tmp_path, torch):
    from safetensors.torch import load_file

    folder, state = bin_llama
    before = inspect(str(folder)).to_dict()
    assert before["preparation"] == ["convert_weights_to_safetensors", "generate_tokenizer_json"]

    result = _prepare(folder, tmp_path)

    out = Path(result.stored.location)
    assert result.report["deployable"] and result.report["preparation"] == []
    assert inspect(str(out)).to_dict()["preparation"] == []
    assert not list(out.glob("*.bin")) and (out / "model.safetensors").is_file()
    assert not (tmp_path / "work").exists()  # a finished run leaves no work folder
    loaded = load_file(out / "model.safetensors")
    # Tied lm_head saved once, as save_pretrained does; every other tensor bit-for-bit.
    assert set(loaded) == set(state) - {"lm_head.weight"}
    assert all(torch.equal(loaded[k], state[k]) and loaded[k].dtype == state[k].dtype for k in loaded)
    assert result.steps["convert_weights_to_safetensors"]["dropped"] == {"lm_head.weight": "model.embed_tokens.weight"}
    # tokenizer.json encodes as the sentencepiece model does
    import sentencepiece as spm
    from tokenizers import Tokenizer

    sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    fast = Tokenizer.from_file(str(out / "tokenizer.json"))
    for text in ("hello world", "the lazy fox becomes json"):
        assert [t for t in fast.encode(text, add_special_tokens=False).ids] == sp.encode(text)
    assert verify_manifest(out) == []
    assert set(result.manifest) == {p.name for p in out.iterdir() if p.name != "SHA256SUMS"}
    assert "README.md" not in result.manifest  # only the files the platform needs


def test_sharded_bin_with_index_becomes_sharded_safetensors_with_index_and_casts_on_request(
        sharded_llama, tmp_path, torch):
    from safetensors.torch import load_file

    folder, state = sharded_llama
    result = _prepare(folder, tmp_path, max_shard_bytes=3000, cast_to_16bit=True)

    out = Path(result.stored.location)
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) > 3 and shards[0].name.endswith(f"-of-{len(shards):05d}.safetensors")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(state) and set(index["weight_map"].values()) == {s.name for s in shards}
    loaded = {}
    for shard in shards:
        loaded.update(load_file(shard))
    assert set(loaded) == set(state)  # untied lm_head kept
    # The config says bfloat16: its 32-bit norms are cast to it, the rest is untouched.
    assert {t.dtype for t in loaded.values()} == {torch.bfloat16}
    assert all(torch.equal(loaded[k], state[k].to(torch.bfloat16)) for k in state)
    assert any(t.dtype == torch.float32 for t in state.values())
    assert result.steps["convert_weights_to_safetensors"]["cast"] == "BF16"
    assert not list(out.glob("pytorch_model*")) and result.report["deployable"]
    assert result.report["preparation"] == []


def test_malicious_pickle_is_refused_and_its_code_never_runs(torch, tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "evil"
    folder.mkdir()
    torch.save({"model.embed_tokens.weight": torch.zeros(2, 2), "payload": Evil(marker)}, folder / "pytorch_model.bin")
    write_json(folder / "config.json", tiny_llama_config())
    write_json(folder / "tokenizer.json", {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0},
                                                                        "unk_token": "a"}})
    with pytest.raises(PrepareError) as caught:
        _prepare(folder, tmp_path)
    assert caught.value.code == "unsafe_pickle"
    assert "refused without running" in caught.value.message
    assert not marker.exists()
    assert not (tmp_path / "media" / "prepared").exists()  # nothing presented as ready


def test_tinytimemixer_gets_tsfm_config_from_its_config(tmp_path):
    folder = make_ttm(tmp_path / "ttm")
    result = _prepare(folder, tmp_path)
    doc = json.loads((Path(result.stored.location) / "tsfm_config.json").read_text())
    assert doc["maximum_context_length"] == doc["minimum_context_length"] == 1024
    assert doc["maximum_prediction_length"] == 48
    assert doc["service_handler_class_name"] == "TinyTimeMixerForecastingHandler"
    assert result.report["deployable"] and result.report["preparation"] == []


def test_a_garbage_tokenizer_file_fails_saying_the_tokenizer_files_could_not_be_read(tmp_path):
    """transformers falls back from sentencepiece to tiktoken on a corrupt
    tokenizer.model and complains that tiktoken is missing: the user is told
    about their files, not sent to install a package."""
    pytest.importorskip("transformers")
    folder = tmp_path / "garbled"
    folder.mkdir()
    save_file({"model.norm.weight": np.ones(16, dtype=np.float16)}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    write_json(folder / "config.json", tiny_llama_config(num_hidden_layers=0))
    write_json(folder / "tokenizer_config.json", {"tokenizer_class": "LlamaTokenizer"})
    (folder / "tokenizer.model").write_bytes(b"x")
    with pytest.raises(PrepareError) as exc:
        _prepare(folder, tmp_path)
    assert exc.value.code == "tokenizer_failed"
    message = exc.value.message
    assert "tokenizer files (tokenizer.model, tokenizer_config.json) could not be read or converted" in message
    assert "tiktoken" not in message and "pip install" not in message


def test_metadata_fix_rewrites_only_the_header(tmp_path):
    folder = tmp_path / "mlx"
    folder.mkdir()
    tensors = {"model.embed_tokens.weight": np.arange(64 * 16, dtype=np.float16).reshape(64, 16),
               "model.norm.weight": np.ones(16, dtype=np.float16)}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "mlx"})
    write_json(folder / "config.json", tiny_llama_config(num_hidden_layers=0))
    write_json(folder / "tokenizer.json", {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0},
                                                                        "unk_token": "a"}})
    assert inspect(str(folder)).to_dict()["preparation"] == ["fix_safetensors_metadata"]

    result = _prepare(folder, tmp_path)

    def data(path: Path) -> bytes:
        raw = path.read_bytes()
        return raw[8 + struct.unpack("<Q", raw[:8])[0]:]

    fixed = Path(result.stored.location) / "model.safetensors"
    assert data(fixed) == data(folder / "model.safetensors")
    from safetensors import safe_open

    with safe_open(str(fixed), "np") as fh:
        assert fh.metadata() == {"format": "pt"}
        assert all(np.array_equal(fh.get_tensor(k), v) for k, v in tensors.items())
    assert result.report["deployable"]


def _llama31(tmp_path: Path) -> Path:
    folder = tmp_path / "llama31"
    folder.mkdir()
    save_file({"model.norm.weight": np.ones(16, dtype=np.float16)}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    write_json(folder / "config.json", tiny_llama_config(num_hidden_layers=0, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}))
    write_json(folder / "tokenizer.json", {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0},
                                                                        "unk_token": "a"}})
    return folder


def test_rope_fix_waits_for_review_then_applies_the_two_field_form(tmp_path):
    folder = _llama31(tmp_path)
    with pytest.raises(NeedsReview) as review:
        _prepare(folder, tmp_path)
    assert '+    "type": "dynamic"' in review.value.diff and '-    "rope_type": "llama3"' in review.value.diff
    assert (tmp_path / "work" / "download" / "config.json").is_file()  # kept for the answer

    result = _prepare(folder, tmp_path, rope_accept=True)

    cfg = json.loads((Path(result.stored.location) / "config.json").read_text())
    assert cfg["rope_scaling"] == {"type": "dynamic", "factor": 8.0}
    known_issues = next(c for c in result.report["checks"] if c["id"] == "known_issues")
    assert result.report["preparation"] == [] and known_issues["status"] == "pass"


def test_declined_rope_fix_keeps_config_json_as_it_was(tmp_path):
    folder = _llama31(tmp_path)
    result = _prepare(folder, tmp_path, rope_accept=False)
    stored = Path(result.stored.location) / "config.json"
    assert stored.read_bytes() == (folder / "config.json").read_bytes()
    assert result.steps["fix_rope_scaling"]["applied"] is False


def test_running_out_of_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch, bin_llama):
    import cfm.preparation.download as dl

    folder, _state = bin_llama
    free = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: free._replace(free=1024))
    with pytest.raises(PrepareError) as caught:
        _prepare(folder, tmp_path)
    assert caught.value.code == "disk_full" and "free" in caught.value.message
    assert not (tmp_path / "work").exists() and not (tmp_path / "media").exists()


def test_converter_over_its_memory_limit_fails_cleanly_without_harming_the_caller(torch, tmp_path):
    from cfm.preparation.sandbox import run_worker

    (tmp_path / "in").mkdir()
    torch.save({"w": torch.ones(64, 1024, 1024)}, tmp_path / "in" / "pytorch_model.bin")  # 256 MiB of F32
    (tmp_path / "out").mkdir()
    task = {"command": "convert", "inputs": [str(tmp_path / "in" / "pytorch_model.bin")],
            "out_dir": str(tmp_path / "out"), "max_shard_bytes": 10**9, "cast": "F16", "tied": False}
    with pytest.raises(PrepareError) as caught:  # casting needs 128 MiB more than the 32 MiB allowed
        run_worker(task, work_dir=tmp_path, max_memory=32 * 1024**2, time_limit=120)
    assert caught.value.code == "out_of_memory"
    assert not list((tmp_path / "out").glob("*.safetensors"))  # no half-written shard under a final name
    with pytest.raises(PrepareError) as slow:
        run_worker(task, work_dir=tmp_path, max_memory=2 * 1024**3, time_limit=1)
    assert slow.value.code == "time_limit"


def test_a_rerun_after_cancel_redoes_only_the_missing_steps(tmp_path):
    from cfm.preparation.errors import Cancelled

    folder = make_ttm(tmp_path / "ttm")
    save_file({"backbone.w": np.ones((8, 8), dtype=np.float32)}, str(folder / "model.safetensors"),
              metadata={"format": "mlx"})
    steps = inspect(str(folder)).to_dict()["preparation"]
    assert steps == ["add_tsfm_config", "fix_safetensors_metadata"]
    opts = PrepareOptions(steps=steps)
    source = SourceSpec(kind="local", path=str(folder))
    stages: list[str] = []

    def run(cancel=None):
        stages.clear()
        return prepare(source, opts, work_dir=tmp_path / "work", storage=LocalStorage(tmp_path / "media"),
                       key="prepared/1/1", progress=lambda stage, d: stages.append(stage), cancel=cancel)

    with pytest.raises(Cancelled):  # stopped once the first step is done
        run(cancel=lambda: "fix_safetensors_metadata" in stages)
    assert (tmp_path / "work" / "steps" / "add_tsfm_config" / ".done").is_file()
    assert not (tmp_path / "media").exists()

    result = run()

    assert "add_tsfm_config" not in stages and "fix_safetensors_metadata" in stages
    assert "downloading" in stages  # listed again, but every file was already there
    assert result.report["deployable"] and result.report["preparation"] == []
