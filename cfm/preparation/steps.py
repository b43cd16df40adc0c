"""The small preparation steps, pure Python: tsfm_config.json, the
rope_scaling edit (as a diff the user accepts), and the choice of the slow
tokenizer class the sandbox converts.
"""
from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

from cfm import catalog as rules
from cfm.inspection.jsonsafe import JsonProblem, loads_bounded

from .errors import PrepareError

CONFIG_CAP = 4_000_000


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        raw = path.read_bytes()
        doc = loads_bounded(raw, max_bytes=CONFIG_CAP, max_depth=200)
    except FileNotFoundError:
        raise PrepareError("bad_config", "config.json is missing") from None
    except JsonProblem as exc:
        raise PrepareError("bad_config", f"config.json is not valid JSON ({exc.reason})") from None
    if not isinstance(doc, dict):
        raise PrepareError("bad_config", "config.json is not a JSON object")
    return doc


def write_json(path: Path, doc: Any) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


# --- add_tsfm_config ---------------------------------------------------------------------------------------
def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def tsfm_config_for(config: dict[str, Any]) -> dict[str, Any]:
    """tsfm_config.json for a tinytimemixer model: the published template,
    with the context and prediction lengths of its config.json."""
    doc = copy.deepcopy(rules.TSFM_CONFIG_TEMPLATE)
    context = _positive_int(config.get("context_length"))
    prediction = _positive_int(config.get("prediction_length"))
    if context:
        doc["minimum_context_length"] = context
        doc["maximum_context_length"] = context
    if prediction:
        doc["maximum_prediction_length"] = prediction
    return doc


# --- fix_rope_scaling ------------------------------------------------------------------------------------
def rope_factor(config: dict[str, Any]) -> float | None:
    # No factor of its own: nothing to keep (the engine says so and does not ask for this step).
    return rules.llama3_rope_scaling(config)[1]


def rope_fixed(config: dict[str, Any]) -> dict[str, Any] | None:
    """config.json with the two-field rope_scaling older runtimes accept,
    or None when the model does not need it."""
    factor = rope_factor(config)
    if factor is None:
        return None
    fixed = dict(config)  # keeps key order: the diff shows one block changed
    fixed["rope_scaling"] = {"type": rules.ROPE_FIX["replacement_type"], "factor": factor}
    return fixed


def rope_diff(config: dict[str, Any]) -> str:
    """A unified diff of config.json before and after the edit ('' if none)."""
    fixed = rope_fixed(config)
    if fixed is None:
        return ""
    before = json.dumps(config, indent=2, ensure_ascii=False).splitlines(keepends=True)
    after = json.dumps(fixed, indent=2, ensure_ascii=False).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, "config.json", "config.json (prepared)", n=2))


# --- generate_tokenizer_json -------------------------------------------------------------------------------
#: Slow-tokenizer files -> the transformers class that reads them, when
#: tokenizer_config.json names no known class. Names only: the sandbox looks
#: them up in transformers itself (never a module path from the model).
_BY_FILES = (
    (("tokenizer.model",), "LlamaTokenizer"),
    (("spiece.model",), "T5Tokenizer"),
    (("sentencepiece.bpe.model",), "XLMRobertaTokenizer"),
    (("vocab.json", "merges.txt"), "GPT2Tokenizer"),
    (("vocab.txt",), "BertTokenizer"),
)
_BY_MODEL_TYPE = {"gemma": "GemmaTokenizer", "gemma2": "GemmaTokenizer", "t5": "T5Tokenizer",
                  "mt5": "T5Tokenizer", "qwen2": "Qwen2Tokenizer", "codegen": "CodeGenTokenizer"}


def _known_classes() -> frozenset[str]:
    names = {cls for _files, cls in _BY_FILES} | set(_BY_MODEL_TYPE.values())
    try:  # the converters' own table, when transformers is installed
        from transformers.convert_slow_tokenizer import SLOW_TO_FAST_CONVERTERS
    except ImportError:
        return frozenset(names)
    return frozenset(names | set(SLOW_TO_FAST_CONVERTERS))


def tokenizer_class_for(folder: Path, config: dict[str, Any] | None) -> str:
    """The transformers tokenizer class to load the slow files with."""
    tok_cfg_path = folder / "tokenizer_config.json"
    named = None
    if tok_cfg_path.is_file() and tok_cfg_path.stat().st_size < CONFIG_CAP:
        try:
            tok_cfg = loads_bounded(tok_cfg_path.read_bytes(), max_bytes=CONFIG_CAP, max_depth=200)
            named = tok_cfg.get("tokenizer_class") if isinstance(tok_cfg, dict) else None
        except JsonProblem:
            named = None
    known = _known_classes()
    if isinstance(named, str):
        base = named.removesuffix("Fast")
        if base in known:
            return base
    model_type = rules.normalize_model_type(str((config or {}).get("model_type", "")))
    for files, cls in _BY_FILES:
        if all((folder / f).is_file() for f in files):
            if files == ("tokenizer.model",) and model_type in _BY_MODEL_TYPE:
                return _BY_MODEL_TYPE[model_type]
            return cls
    raise PrepareError("tokenizer_failed", "no slow tokenizer files (tokenizer.model, vocab.json + merges.txt, "
                       "spiece.model, vocab.txt) to generate tokenizer.json from")
