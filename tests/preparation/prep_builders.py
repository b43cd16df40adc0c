"""Small real models for the preparation tests, written with torch as
their authors would: torch.save of a state dict, a sentencepiece
tokenizer trained on a few lines, a sharded .bin with its index."""
from __future__ import annotations

import json
import os
from pathlib import Path

LINES = [
    "the quick brown fox jumps over the lazy dog",
    "custom foundation models are prepared before deployment",
    "hello world of tiny language models",
    "weights become safetensors and tokenizers become json",
] * 10


def tiny_llama_config(**extra) -> dict:
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 16,
           "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 32,
           "vocab_size": 64, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "max_position_embeddings": 128}
    cfg.update(extra)
    return cfg


def tiny_llama_state(torch, cfg: dict, dtype=None) -> dict:
    g = torch.Generator().manual_seed(0)
    h, inter, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    kv = h // cfg["num_attention_heads"] * cfg["num_key_value_heads"]
    dtype = dtype or torch.float32

    def r(*shape):
        return torch.randn(*shape, generator=g).to(dtype)

    sd = {"model.embed_tokens.weight": r(vocab, h)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        sd.update({
            p + "self_attn.q_proj.weight": r(h, h), p + "self_attn.k_proj.weight": r(kv, h),
            p + "self_attn.v_proj.weight": r(kv, h), p + "self_attn.o_proj.weight": r(h, h),
            p + "mlp.gate_proj.weight": r(inter, h), p + "mlp.up_proj.weight": r(inter, h),
            p + "mlp.down_proj.weight": r(h, inter), p + "input_layernorm.weight": torch.ones(h, dtype=dtype),
            p + "post_attention_layernorm.weight": torch.ones(h, dtype=dtype),
        })
    sd["model.norm.weight"] = torch.ones(h, dtype=dtype)
    # Tied, as a llama with tie_word_embeddings saves it: the same tensor twice.
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    return sd


def train_sentencepiece(folder: Path, vocab_size: int = 64) -> Path:
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(LINES), model_prefix=str(folder / "tokenizer"), vocab_size=vocab_size,
        model_type="bpe", unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    (folder / "tokenizer.vocab").unlink(missing_ok=True)
    return folder / "tokenizer.model"


def write_json(path: Path, doc) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))


def make_bin_llama(torch, folder: Path, *, tokenizer_model: Path | None = None, cfg: dict | None = None) -> dict:
    """A llama as pytorch_model.bin + tokenizer.model; returns its state dict."""
    cfg = cfg or tiny_llama_config()
    folder.mkdir(parents=True, exist_ok=True)
    sd = tiny_llama_state(torch, cfg)
    torch.save(sd, folder / "pytorch_model.bin")
    write_json(folder / "config.json", cfg)
    write_json(folder / "tokenizer_config.json", {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>",
                                                  "eos_token": "</s>", "unk_token": "<unk>"})
    if tokenizer_model is not None:
        os.link(tokenizer_model, folder / "tokenizer.model")
    (folder / "README.md").write_text("# tiny llama\n")
    return sd


def make_sharded_bin(torch, folder: Path, shards: int = 3, cfg: dict | None = None) -> dict:
    """pytorch_model-0000i-of-0000N.bin with pytorch_model.bin.index.json,
    and a tokenizer.json already there."""
    cfg = cfg or tiny_llama_config(tie_word_embeddings=False)
    folder.mkdir(parents=True, exist_ok=True)
    sd = tiny_llama_state(torch, cfg, dtype=torch.bfloat16)
    sd["lm_head.weight"] = sd["lm_head.weight"].clone()  # untied: its own copy
    # Norms kept in 32 bits, as mixed-precision checkpoints often do.
    for name in [n for n in sd if n.endswith("norm.weight")]:
        sd[name] = sd[name].float()
    names = list(sd)
    weight_map = {}
    for i in range(shards):
        fname = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        part = {n: sd[n] for n in names[i::shards]}
        torch.save(part, folder / fname)
        weight_map.update({n: fname for n in part})
    write_json(folder / "pytorch_model.bin.index.json", {"metadata": {"total_size": 0}, "weight_map": weight_map})
    write_json(folder / "config.json", cfg)
    write_json(folder / "tokenizer.json", {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0},
                                                                         "unk_token": "a"}})
    return sd


def make_ttm(folder: Path, torch=None) -> Path:
    """A tinytimemixer folder without tsfm_config.json (as on the Hub)."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", {"model_type": "tinytimemixer", "architectures": ["TinyTimeMixerForPrediction"],
                                        "context_length": 1024, "prediction_length": 48, "d_model": 8})
    save_file({"backbone.w": np.ones((8, 8), dtype=np.float32)}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    return folder


def archive_registration(actor, folder: Path, tmp_path: Path, **fields):
    """A registration of `folder` uploaded as a .tar.gz, inspected (status
    done, its report stored), as the worker leaves one."""
    import tarfile

    from cfm.inspection import inspect
    from cfm.registry.models import Registration, SourceKind, Status

    archive = tmp_path / f"{folder.name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    values = {"status": Status.DONE, "report": inspect(str(archive)).to_dict(), **fields}
    return Registration.objects.create(account=actor.account, created_by=actor.user, source_kind=SourceKind.ARCHIVE,
                                       source=archive.name, upload_path=str(archive), **values)
