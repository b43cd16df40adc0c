"""A small seeded fuzzer: mutated headers, config.json files and archives.
Whatever the bytes, the engine returns a report that keeps the contract
(or raises SourceError for an unreadable archive), never anything else."""
from __future__ import annotations

import json
import random
import struct
import zipfile

import pytest
from inspect_support import check, folder, llama_cfg, raw_header_file, real_safetensors, run

from cfm.inspection import SourceError

GOOD_HEADER = json.dumps({
    "__metadata__": {"format": "pt"},
    "model.embed_tokens.weight": {"dtype": "BF16", "shape": [8, 4], "data_offsets": [0, 64]},
    "model.norm.weight": {"dtype": "F32", "shape": [4], "data_offsets": [64, 80]},
}).encode()
ATOMS = [None, True, False, 0, -1, 1, 2**63, 2**64, 10**30, 1.5, -0.0, "", "F16", "BF16", "I32", "pt", [], {}, [0],
         [0, 0], [-1, 2], [[1]], {"a": 1}, "\u0000", "\ud800", "x" * 1000]


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        i = rng.randrange(len(b) + 1)
        if op < 0.4 and b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op < 0.7:
            b[i:i] = bytes([rng.choice(b'{}[]",:0123456789-eE.\\ntruefalsnul ')])
        elif b:
            del b[min(i, len(b) - 1)]
    return bytes(b)


def _mutate_doc(rng: random.Random) -> dict:
    doc = json.loads(GOOD_HEADER)
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(list(doc))
        if rng.random() < 0.3:
            doc[name] = rng.choice(ATOMS)
        elif isinstance(doc[name], dict):
            key = rng.choice(list(doc[name]) + ["extra"])
            doc[name][key] = rng.choice(ATOMS)
    return doc


@pytest.mark.parametrize("seed", range(40))
def test_mutated_headers(tmp_path, seed):
    rng = random.Random(seed)
    path = folder(tmp_path / "m", llama_cfg())
    if seed % 2:
        raw = _mutate_bytes(rng, GOOD_HEADER)
    else:
        raw = json.dumps(_mutate_doc(rng), ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    length = None if rng.random() < 0.8 else rng.choice([0, 1, 7, len(raw) + 1, 2**63, 2**64 - 1])
    raw_header_file(path / "model.safetensors", raw, rng.choice([0, 80, 79, 81, 4096]), length=length)
    d = run(path)
    assert check(d, "safetensors_header")["status"] in ("pass", "fail")


@pytest.mark.parametrize("seed", range(30))
def test_mutated_configs(tmp_path, seed):
    rng = random.Random(1000 + seed)
    cfg = llama_cfg(rope_scaling={"rope_type": "llama3", "factor": 8.0}, auto_map={"AutoModel": "x.Y"},
                    quantization_config={"quant_method": "gptq", "bits": 4})
    raw = json.dumps(cfg).encode()
    if seed % 3 == 0:
        raw = _mutate_bytes(rng, raw)
    else:
        for _ in range(rng.randint(1, 4)):
            key = rng.choice(list(cfg) + ["text_config", "num_local_experts", "head_dim", "multi_query"])
            cfg[key] = rng.choice(ATOMS)
        raw = json.dumps(cfg).encode("utf-8", "surrogatepass")
    path = folder(tmp_path / "m", None)
    (path / "config.json").write_bytes(raw)
    real_safetensors(path / "model.safetensors")
    run(path)


@pytest.mark.parametrize("seed", range(20))
def test_mutated_zip_archives(tmp_path, seed):
    rng = random.Random(2000 + seed)
    src = folder(tmp_path / "src", llama_cfg())
    real_safetensors(src / "model.safetensors")
    dest = tmp_path / "m.zip"
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, p.name)
    raw = bytearray(dest.read_bytes())
    for _ in range(rng.randint(1, 6)):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    dest.write_bytes(bytes(raw))
    try:
        run(dest)
    except SourceError as exc:
        assert "\n" not in exc.message


@pytest.mark.parametrize("seed", range(10))
def test_mutated_tar_gz_archives(tmp_path, seed):
    import tarfile
    rng = random.Random(3000 + seed)
    src = folder(tmp_path / "src", llama_cfg())
    real_safetensors(src / "model.safetensors")
    dest = tmp_path / "m.tar.gz"
    with tarfile.open(dest, "w:gz") as tf:
        for p in sorted(src.iterdir()):
            tf.add(p, p.name)
    raw = bytearray(dest.read_bytes())
    for _ in range(rng.randint(1, 4)):
        raw[rng.randrange(10, len(raw))] = rng.randrange(256)
    dest.write_bytes(bytes(raw))
    try:
        run(dest)
    except SourceError as exc:
        assert "\n" not in exc.message


def test_header_length_prefix_at_every_boundary(tmp_path):
    path = folder(tmp_path / "m", llama_cfg())
    for n in (0, 1, 2, len(GOOD_HEADER) - 1, len(GOOD_HEADER), len(GOOD_HEADER) + 1, len(GOOD_HEADER) + 80,
              len(GOOD_HEADER) + 81):
        (path / "model.safetensors").write_bytes(struct.pack("<Q", n) + GOOD_HEADER + b"\0" * 80)
        status = check(run(path), "safetensors_header")["status"]
        assert status == ("pass" if n == len(GOOD_HEADER) else "fail"), n
