"""Model folders for tests: small real safetensors written with the
`safetensors` package, and big ones as sparse files (a real header, then
os.truncate), so a 405B model costs a few kilobytes of disk."""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I32": 4, "I64": 8, "U8": 1, "I8": 1, "BOOL": 1,
               "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2}

LLAMA_TOKENIZER = {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0, "[UNK]": 1},
                                               "unk_token": "[UNK]"}}


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def header_bytes(tensors: dict[str, tuple[str, list[int]]], metadata: dict | None = None) -> tuple[bytes, int]:
    """A safetensors header for tensors {name: (dtype, shape)}, laid out in
    order; returns (8-byte length + JSON, size of the data buffer)."""
    hdr: dict = {}
    if metadata is not None:
        hdr["__metadata__"] = metadata
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = DTYPE_BYTES[dtype]
        for d in shape:
            n *= d
        hdr[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(hdr, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw, offset


def write_sparse_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]],
                             metadata: dict | None = None) -> int:
    """A real header then a hole the size of the data: nothing written but
    the header. Returns the file size."""
    head, data_len = header_bytes(tensors, {"format": "pt"} if metadata is None else metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(head)
    os.truncate(path, len(head) + data_len)
    return len(head) + data_len


def write_raw_safetensors(path: Path, header: bytes | dict, data: bytes = b"", length: int | None = None) -> Path:
    """Any header at all, even a hostile one."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if length is None else length
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", n) + raw + data)
    return path


def llama_config(hidden=4096, layers=32, heads=32, kv_heads=8, intermediate=14336, vocab=128256, tie=False,
                 **extra) -> dict:
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": hidden,
           "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
           "intermediate_size": intermediate, "vocab_size": vocab, "tie_word_embeddings": tie,
           "torch_dtype": "bfloat16"}
    cfg.update(extra)
    return cfg


def llama_tensors(cfg: dict, dtype="BF16") -> dict[str, tuple[str, list[int]]]:
    h, inter, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = h // heads
    t: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": (dtype, [vocab, h])}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "self_attn.q_proj.weight"] = (dtype, [heads * hd, h])
        t[p + "self_attn.k_proj.weight"] = (dtype, [kv * hd, h])
        t[p + "self_attn.v_proj.weight"] = (dtype, [kv * hd, h])
        t[p + "self_attn.o_proj.weight"] = (dtype, [h, heads * hd])
        t[p + "mlp.gate_proj.weight"] = (dtype, [inter, h])
        t[p + "mlp.up_proj.weight"] = (dtype, [inter, h])
        t[p + "mlp.down_proj.weight"] = (dtype, [h, inter])
        t[p + "input_layernorm.weight"] = (dtype, [h])
        t[p + "post_attention_layernorm.weight"] = (dtype, [h])
    t["model.norm.weight"] = (dtype, [h])
    if not cfg.get("tie_word_embeddings"):
        t["lm_head.weight"] = (dtype, [vocab, h])
    return t


def count(tensors: dict[str, tuple[str, list[int]]]) -> int:
    total = 0
    for _, shape in tensors.values():
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def write_sharded(folder: Path, tensors: dict[str, tuple[str, list[int]]], shards: int,
                  metadata: dict | None = None) -> list[str]:
    """Sparse shards plus model.safetensors.index.json, as save_pretrained lays them out."""
    names = list(tensors)
    per = -(-len(names) // shards)
    weight_map = {}
    files = []
    for i in range(shards):
        part = {n: tensors[n] for n in names[i * per:(i + 1) * per]}
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_sparse_safetensors(folder / fname, part, metadata)
        weight_map.update({n: fname for n in part})
        files.append(fname)
    write_json(folder / "model.safetensors.index.json", {"metadata": {"total_size": 0}, "weight_map": weight_map})
    return files


def make_model(folder: Path, cfg: dict, tensors: dict | None = None, *, shards: int = 1, tokenizer=True,
               metadata: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", cfg)
    if tokenizer:
        write_json(folder / "tokenizer.json", LLAMA_TOKENIZER)
    tensors = tensors if tensors is not None else llama_tensors(cfg)
    if shards == 1:
        write_sparse_safetensors(folder / "model.safetensors", tensors, metadata)
    else:
        write_sharded(folder, tensors, shards, metadata)
    return folder


def make_tiny_real(folder: Path, cfg: dict | None = None, dtype=np.float16) -> Path:
    """A small model with real tensor data, written by safetensors itself."""
    cfg = cfg or llama_config(hidden=16, layers=2, heads=4, kv_heads=2, intermediate=32, vocab=64)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", cfg)
    write_json(folder / "tokenizer.json", LLAMA_TOKENIZER)
    rng = np.random.default_rng(0)
    arrays = {}
    for name, (_, shape) in llama_tensors(cfg).items():
        arrays[name] = rng.standard_normal(shape).astype(dtype)
    save_file(arrays, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


# Shapes of real models (config.json as published), for the big sparse fixtures.
LLAMA3_8B = llama_config()
LLAMA3_70B = llama_config(hidden=8192, layers=80, heads=64, kv_heads=8, intermediate=28672)
LLAMA31_405B = llama_config(hidden=16384, layers=126, heads=128, kv_heads=8, intermediate=53248,
                            rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                          "original_max_position_embeddings": 8192, "rope_type": "llama3"})


class Evil:
    """Pickles to a call that would create `marker`: a payload that runs if anything ever unpickles it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(marker: Path) -> bytes:
    """The one malicious pickle the tests feed to inspection and Prepare."""
    import pickle

    payload = pickle.dumps(Evil(marker))
    assert b"system" in payload  # it would run if anything loaded it
    return payload
