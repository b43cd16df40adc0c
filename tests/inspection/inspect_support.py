"""Helpers for the inspection tests: run the engine in-process (fast) and
hold every report to the contract of docs/report.md."""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
from modelfactory import LLAMA_TOKENIZER, write_json, write_sparse_safetensors
from safetensors.numpy import save_file

from cfm.inspection import InspectLimits, InspectOptions, inspect

# The contract's list, written out here rather than read from cfm.catalog:
# a test must fail if the engine's order drifts from the document.
CONTRACT_CHECK_IDS = [
    "config_present", "config_valid", "architecture", "trust_remote_code", "weights_format",
    "safetensors_header", "safetensors_index", "safetensors_metadata", "dtypes", "tokenizer",
    "quantization", "tsfm_config", "size", "software_spec", "known_issues",
]
#: checks the contract's second wave added after the fifteen, in order
ADDED_CHECK_IDS = ["context"]
FIELDS = {"schema": int, "rules_version": str, "source": str, "model_type": (str, type(None)), "architectures": list,
          "family": str, "certified": bool, "parameters": (int, type(None)), "parameters_exact": bool,
          "weight_bytes": (int, type(None)), "serving_bytes": (int, type(None)), "dtypes": dict,
          "quantization": (str, type(None)), "tensor_parallel": (bool, type(None)),
          "configuration": (str, type(None)), "software_specs": list,
          "recommended_software_spec": (str, type(None)), "deployable": bool, "preparation": list, "checks": list}
PREPARATION_STEPS = ["convert_weights_to_safetensors", "generate_tokenizer_json", "add_tsfm_config",
                     "fix_safetensors_metadata", "fix_rope_scaling"]
TGI, VLLM, TSFM = "watsonx-cfm-caikit-1.0", "watsonx-cfm-caikit-1.1", "watsonx-tsfm-runtime-1.0"


def _no_constants(name):
    raise AssertionError(f"the report holds {name}, which is not JSON")


def assert_contract(d: dict) -> None:
    for key, typ in FIELDS.items():
        assert key in d, key
        assert isinstance(d[key], typ) and not (typ is int and isinstance(d[key], bool)), (key, d[key])
    # The contract's fifteen in its order, then the checks added after them (the second wave's `context`).
    assert [c["id"] for c in d["checks"]] == CONTRACT_CHECK_IDS + ADDED_CHECK_IDS
    assert d["verdict"] in ("ready", "prepare", "uncertified", "refused")
    assert (d["verdict"] == "refused") == (not d["deployable"])
    assert d["context_length"] is None or (isinstance(d["context_length"], int) and d["context_length"] > 0)
    assert d["memory"] is None or set(d["memory"]) == {"kv_cache_bytes_per_token", "configurations",
                                                       "weights_estimated"}
    for c in d["checks"]:
        assert c["status"] in ("pass", "warn", "fail", "skip"), c
        assert isinstance(c["message"], str) and c["message"].strip(), c
        assert not re.search(r"\{[a-z_]+\}", c["message"]), c["message"]  # no unfilled placeholder
        if c["status"] in ("warn", "fail"):
            assert isinstance(c["remedy"], str) and c["remedy"].strip(), c
        else:
            assert c["remedy"] is None, c
    assert d["deployable"] == (not any(c["status"] == "fail" for c in d["checks"]))
    assert d["preparation"] == [s for s in PREPARATION_STEPS if s in d["preparation"]]
    assert d["configuration"] in (None, "small", "medium", "large", "extra_large")
    # Strict JSON (no NaN/Infinity) that survives a round trip.
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text, parse_constant=_no_constants) == d
    # Writable as UTF-8 and storable in PostgreSQL's jsonb: no lone surrogates, no U+0000.
    json.dumps(d, ensure_ascii=False).encode("utf-8")
    assert "\\u0000" not in text


def run(path, *, users=None, payload=None, limits: InspectLimits | None = None) -> dict:
    """The report of a local folder or archive, checked against the contract."""
    options = InspectOptions(limits=limits or InspectLimits(), concurrent_users=users, payload=payload)
    d = inspect(str(path), options=options).to_dict()
    assert_contract(d)
    return d


def statuses(d: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in d["checks"]}


def check(d: dict, check_id: str) -> dict:
    return next(c for c in d["checks"] if c["id"] == check_id)


def folder(path: Path, cfg: dict | None = None, tensors: dict | None = None, *, tokenizer=True,
           metadata: dict | None = None, name="model.safetensors") -> Path:
    """A model folder: config.json, tokenizer.json and one sparse safetensors
    file with a real header for `tensors` {name: (dtype, shape)}."""
    path.mkdir(parents=True, exist_ok=True)
    if cfg is not None:
        write_json(path / "config.json", cfg)
    if tokenizer:
        write_json(path / "tokenizer.json", LLAMA_TOKENIZER)
    if tensors is not None:
        write_sparse_safetensors(path / name, tensors, metadata)
    return path


def real_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]] | None = None,
                     metadata: dict | None = None) -> Path:
    """A small safetensors file written by the safetensors package itself."""
    np_types = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "I64": np.int64, "U8": np.uint8,
                "BOOL": np.bool_, "F64": np.float64, "I8": np.int8}
    tensors = tensors or {"model.embed_tokens.weight": ("F16", [8, 4]), "model.norm.weight": ("F16", [4])}
    arrays = {n: np.zeros(shape, dtype=np_types[dt]) for n, (dt, shape) in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(path), metadata={"format": "pt"} if metadata is None else metadata)
    return path


def raw_header_file(path: Path, raw: bytes, data_len: int = 0, length: int | None = None) -> Path:
    """A .safetensors file with any header bytes at all, then `data_len` zero bytes (sparse)."""
    n = len(raw) if length is None else length
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", n) + raw)
    if data_len:
        import os

        os.truncate(path, 8 + len(raw) + data_len)
    return path


def llama_cfg(**extra) -> dict:
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 16, "num_hidden_layers": 1,
           "num_attention_heads": 2, "num_key_value_heads": 2, "intermediate_size": 32, "vocab_size": 8,
           "torch_dtype": "bfloat16"}
    cfg.update(extra)
    return cfg


TINY = {"model.embed_tokens.weight": ("BF16", [8, 16]), "model.norm.weight": ("BF16", [16])}
